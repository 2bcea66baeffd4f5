#!/usr/bin/env node
/**
 * Builds what Devex runs: each service, the CLI and the start script bundled by esbuild into plain
 * JavaScript under dist/, so no process loads a TypeScript loader or resolves hundreds of modules
 * at start (module loading, not TypeScript, dominated start times and idle memory).
 *
 *   node scripts/build.mjs [--if-stale] [--quiet] [target...]
 *
 * `npm install` runs it (postinstall); `npm start`, the `devex` command and the tests run it with
 * --if-stale, which rebuilds only a target one of whose inputs changed (meta.json records each
 * input's size and mtime). Builds of a target take turns (a lock folder), and a build is staged
 * beside the target and moved in file by file, so a process starting meanwhile never finds a
 * target missing or half written, and one already running still finds the chunks it loaded from.
 * A plain .mjs file so that it runs before anything is built.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runnerNodeFlags } from "../lib/contracts/runner-node-flags.mjs";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));

/**
 * One folder of dist/ per target; entry points are named by their output file. Code shared by a
 * target's entries goes into chunks beside them, and so do dynamic imports (the CLI's commands),
 * except in a code-cached target (codeCached), whose entries are each one whole bundle.
 */
export const targets = {
  core: { main: "services/core/src/main.ts", cli: "services/core/src/cli.ts" },
  runner: {
    pooled: "services/runner/src/pooled.ts",
    main: "services/runner/src/main.ts",
    cli: "services/runner/src/cli.ts",
  },
  mcp: { main: "services/mcp/src/main.ts", stdio: "services/mcp/src/stdio.ts" },
  cli: { devex: "cli/src/main.ts" },
  sync: { cli: "lib/sync/cli.ts" },
  egress: { main: "services/egress/src/main.ts" },
  start: { main: "scripts/start.ts" },
};

/**
 * Targets whose processes start often and fresh (a runner per repl): their entries are CommonJS
 * bundles, and those in `entries` run from V8's code cache (lib/kit/code-cache.mjs), made with the
 * Node flags those processes run with, since V8 refuses a cache made under other flags. Each
 * entry's .mjs is a small loader, so the paths that start them stay the same. The runner's dev CLI
 * runs without those flags and gets no cache.
 */
export const codeCached = { runner: { nodeFlags: runnerNodeFlags, entries: ["main", "pooled"] } };
const codeCacheFiles = ["lib/kit/code-cache.mjs", "lib/contracts/runner-node-flags.mjs"];

/** Files besides the bundled modules that change a build (when they exist: a packed copy has no lockfile). */
const buildFiles = ["scripts/build.mjs", "package-lock.json", "tsconfig.json", "tsconfig.base.json"];

/** Native addons stay outside the bundles: node-pty loads its prebuilt binary beside its package. */
const external = ["@lydell/node-pty"];

// Bundled CommonJS dependencies call require() and read __dirname; an ES module has neither.
const banner = [
  'import { createRequire as __devexRequire } from "node:module";',
  'import { dirname as __devexDirname } from "node:path";',
  'import { fileURLToPath as __devexFileUrl } from "node:url";',
  "const require = __devexRequire(import.meta.url);",
  "const __filename = __devexFileUrl(import.meta.url);",
  "const __dirname = __devexDirname(__filename);",
].join("\n");

/** Chunks no build has written for this long are not loaded by any process still running. */
const KEEP_OLD_CHUNKS_MS = 24 * 3600_000;
/** A lock whose holder is gone, or older than this, is broken. */
const LOCK_STALE_MS = 10 * 60_000;

/** dist/cli is a package of its own: `npm pack dist/cli` makes an installable `devex` with no dependency. */
function cliPackage(root) {
  const { version, license, engines } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const bin = { devex: "devex.mjs" };
  const pkg = { name: "devex-cli", version, description: "The Devex command line client", license, type: "module" };
  return `${JSON.stringify({ ...pkg, bin, engines }, null, 2)}\n`;
}

const fingerprint = (path) => {
  const s = statSync(path);
  return [s.mtimeMs, s.size];
};

/** True when `target` has no build, or a file it was built from changed, appeared or went away since. */
export function isStale(target, { root = projectRoot } = {}) {
  let meta;
  try {
    meta = JSON.parse(readFileSync(join(root, "dist", target, "meta.json"), "utf8"));
  } catch {
    return true;
  }
  const { inputs } = meta;
  if (meta.node && meta.node !== process.version) return true; // its code caches are another Node's
  for (const file of buildFiles) if (existsSync(join(root, file)) !== file in inputs) return true;
  for (const [file, [mtimeMs, size]] of Object.entries(inputs)) {
    const path = join(root, file);
    if (!existsSync(path)) return true;
    const [m, s] = fingerprint(path);
    if (m !== mtimeMs || s !== size) return true;
  }
  return false;
}

/** Holds dist/.lock-<target> while `fn` runs: builds of one target take turns across processes. */
async function withLock(root, target, fn) {
  const lock = join(root, "dist", `.lock-${target}`);
  await mkdir(dirname(lock), { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, "pid"), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      if (await lockAbandoned(lock)) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function lockAbandoned(lock) {
  const since = await stat(lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  const pid = Number(await readFile(join(lock, "pid"), "utf8").catch(() => ""));
  if (!pid) return since > 5000; // created but never filled in: its holder died in between
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code === "ESRCH") return true;
  }
  return since > LOCK_STALE_MS;
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)));
}

/**
 * Bundles one target into a staging folder, then moves its files into dist/<target> one rename at
 * a time: chunks first, then the entry points that import them, meta.json last (a build that dies
 * halfway stays stale). Chunks of earlier builds stay a day for processes that loaded from them.
 */
async function buildTarget(target, { root = projectRoot, entries = targets[target], cache } = {}) {
  const { build } = await import("esbuild");
  const dir = join(root, "dist", target);
  const staging = join(root, "dist", `.staging-${target}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    const result = await build({
      absWorkingDir: root,
      entryPoints: Object.entries(entries).map(([out, src]) => ({ in: src, out })),
      outdir: staging,
      bundle: true,
      platform: "node",
      target: "node20",
      external,
      ...(cache ? codeCachedOutput : esmOutput(target)),
      // Less source to parse and to keep in every process (V8 holds it for Function.prototype.toString);
      // functions and classes keep their names for logs and error types, the source map has the rest.
      minify: true,
      keepNames: true,
      legalComments: "none",
      sourcemap: "linked",
      metafile: true,
      logLevel: "warning",
    });
    const inputs = {};
    const extra = [...buildFiles, ...(cache ? codeCacheFiles : [])].filter((f) => existsSync(join(root, f)));
    for (const file of [...Object.keys(result.metafile.inputs), ...extra]) {
      if (!file.startsWith("<")) inputs[file] = fingerprint(join(root, file));
    }
    if (cache) await addCodeCaches(root, staging, dir, result.metafile, cache);
    // A code cache holds one Node build's compiled code.
    await writeFile(join(staging, "meta.json"), JSON.stringify({ ...(cache && { node: process.version }), inputs }));
    if (target === "cli") await writeFile(join(staging, "package.json"), cliPackage(root));
    const files = await filesUnder(staging);
    // The loaders import code-cache.mjs: it goes in with the chunks.
    const order = (f) => (f === "meta.json" ? 2 : f.startsWith("chunks/") || f === "code-cache.mjs" ? 0 : 1);
    for (const file of files.sort((a, b) => order(a) - order(b))) {
      await mkdir(dirname(join(dir, file)), { recursive: true });
      await rename(join(staging, file), join(dir, file));
    }
    await pruneOldChunks(dir, new Set(files));
    const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
    return { bytes, inputs: Object.keys(result.metafile.inputs).length };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** ES modules, code shared by a target's entries in chunks beside them (and the CLI's lazy commands). */
const esmOutput = (target) => ({
  format: "esm",
  splitting: true,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  // The CLI's entry is run as a program once installed on its own (cliPackage).
  banner: { js: target === "cli" ? `#!/usr/bin/env node\n${banner}` : banner },
});

/**
 * One CommonJS bundle per entry, named by its content like a chunk: a bundle and its cache never
 * change once written (V8 checks a cache against its source's length only, not its content), and a
 * process that started before a rebuild still finds the files it loaded from.
 */
const codeCachedOutput = { format: "cjs", entryNames: "chunks/[name]-[hash]", outExtension: { ".js": ".cjs" } };

/**
 * Writes each entry's `<name>.mjs`, a loader that runs its bundle, and for the entries of `cache`
 * a `<bundle>.cache` from a process with the flags its processes run with (and no NODE_OPTIONS),
 * whose SHA-256 the loader checks before V8 sees it.
 */
async function addCodeCaches(root, staging, dir, metafile, cache) {
  await copyFile(join(projectRoot, "lib/kit/code-cache.mjs"), join(staging, "code-cache.mjs"));
  const bundles = {};
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!output.entryPoint || !file.endsWith(".cjs")) continue;
    const lazy = output.imports.filter((i) => i.kind === "dynamic-import" && i.external).map((i) => i.path);
    if (lazy.length)
      throw new Error(`${output.entryPoint} imports ${lazy.join(", ")} at run time; a code-cached bundle cannot`);
    const bundle = relative(staging, join(root, file)); // chunks/<name>-<hash>.cjs
    bundles[bundle.slice("chunks/".length).replace(/-[A-Z0-9]+\.cjs$/, "")] = bundle;
  }
  const cached = cache.entries.filter((name) => name in bundles);
  const args = cached.flatMap((name) => [join(staging, bundles[name]), join(dir, bundles[name])]);
  const env = { ...process.env, NODE_OPTIONS: "" };
  const writer = [...cache.nodeFlags, join(staging, "code-cache.mjs"), "--write", ...args];
  const digests = JSON.parse((await promisify(execFile)(process.execPath, writer, { env })).stdout);
  for (const [name, bundle] of Object.entries(bundles)) {
    const digest = digests[join(staging, bundle)];
    if (cached.includes(name) && !digest) throw new Error(`no code cache was written for ${bundle}`);
    const loader = [
      `// Runs the ${name} bundle${digest ? " from V8's code cache" : ""} (code-cache.mjs).`,
      'import { runCached } from "./code-cache.mjs";',
      `runCached(new URL("./${bundle}", import.meta.url)${digest ? `, "${digest}"` : ""});`,
    ];
    await writeFile(join(staging, `${name}.mjs`), `${loader.join("\n")}\n`);
  }
}

async function pruneOldChunks(dir, current) {
  for (const file of await filesUnder(dir)) {
    if (current.has(file)) continue;
    const age = Date.now() - (await stat(join(dir, file))).mtimeMs;
    if (!file.startsWith("chunks/") || age > KEEP_OLD_CHUNKS_MS) await rm(join(dir, file), { force: true });
  }
}

/** Builds the named targets (all by default), those with changed inputs only when `ifStale`. */
export async function buildAll({
  root = projectRoot,
  entries = targets,
  codeCache = codeCached,
  names = Object.keys(entries),
  ifStale = false,
  log = console.error,
} = {}) {
  for (const name of names) {
    if (!(name in entries)) throw new Error(`unknown build target ${name} (one of ${Object.keys(entries).join(", ")})`);
    if (ifStale && !isStale(name, { root })) continue;
    await withLock(root, name, async () => {
      // Another process may have built it while this one waited for the lock.
      if (ifStale && !isStale(name, { root })) return;
      const t0 = performance.now();
      log(`building ${name} (dist/${name})…`);
      const { bytes, inputs } = await buildTarget(name, { root, entries: entries[name], cache: codeCache[name] });
      const ms = Math.round(performance.now() - t0);
      log(`built ${name}: ${inputs} modules into ${(bytes / 1e6).toFixed(1)} MB in ${ms} ms`);
    });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith("--"));
  const quiet = args.includes("--quiet");
  try {
    await buildAll({
      names: names.length ? names : undefined,
      ifStale: args.includes("--if-stale"),
      log: quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
    });
  } catch (err) {
    process.stderr.write(`build failed: ${err.message}\n`);
    process.exitCode = 1;
  }
}
