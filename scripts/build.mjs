#!/usr/bin/env node
/**
 * Builds what Devex runs: each service, the CLI and the start script bundled by esbuild into plain
 * JavaScript under dist/, so no process loads a TypeScript loader or resolves hundreds of modules
 * at start (module loading, not TypeScript, dominated start times and idle memory).
 *
 *   node scripts/build.mjs [--if-stale] [--quiet] [target...]
 *
 * `npm install` runs it (postinstall); `npm start`, the `devex` command and the tests run it with
 * --if-stale, which rebuilds only a target whose inputs (its metafile's list) changed since its
 * build. Without a checkout's sources (an image, an installed CLI) there is nothing to check.
 * A plain .mjs file so that it runs before anything is built.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * One folder of dist/ per target; entry points are named by their output file. Code shared by a
 * target's entries goes into chunks beside them, and so do dynamic imports (the CLI's commands).
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

/** dist/cli is a package of its own: `npm install -g ./dist/cli` installs `devex` with no other dependency. */
function cliPackage() {
  const { version, license, engines } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const bin = { devex: "devex.mjs" };
  return `${JSON.stringify({ name: "devex-cli", version, description: "The Devex command line client", license, type: "module", bin, engines }, null, 2)}\n`;
}

const outDir = (target) => join(root, "dist", target);
const metaFile = (target) => join(outDir(target), "meta.json");

/** True when `target` has no build, or a file it was built from changed since. */
export function isStale(target) {
  const meta = metaFile(target);
  if (!existsSync(meta)) return true;
  const { builtAt, inputs } = JSON.parse(readFileSync(meta, "utf8"));
  for (const input of [...inputs, "scripts/build.mjs", "package-lock.json"]) {
    const path = join(root, input);
    // A deleted input changes the build too (an import now resolves elsewhere or fails).
    if (!existsSync(path) || statSync(path).mtimeMs > builtAt) return true;
  }
  return false;
}

/** Bundles one target into dist/<target>/ and records its inputs. */
export async function buildTarget(target) {
  const { build } = await import("esbuild");
  const dir = outDir(target);
  const builtAt = Date.now();
  await rm(dir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(targets[target]).map(([out, src]) => ({ in: src, out })),
    outdir: dir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    external,
    // The CLI's entry is run as a program once installed on its own (cliPackage below).
    banner: { js: target === "cli" ? `#!/usr/bin/env node\n${banner}` : banner },
    // Less source to parse and to keep in every process (V8 holds it for Function.prototype.toString);
    // functions and classes keep their names for logs and error types, the source map has the rest.
    minify: true,
    keepNames: true,
    legalComments: "none",
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith("<"));
  await mkdir(dir, { recursive: true });
  await writeFile(metaFile(target), JSON.stringify({ builtAt, inputs }));
  if (target === "cli") await writeFile(join(dir, "package.json"), cliPackage());
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  return { bytes, inputs: inputs.length };
}

/** Builds the named targets (all by default), those with changed inputs only when `ifStale`. */
export async function buildAll({ names = Object.keys(targets), ifStale = false, log = console.error } = {}) {
  for (const name of names) {
    if (!(name in targets)) throw new Error(`unknown build target ${name} (one of ${Object.keys(targets).join(", ")})`);
    if (ifStale && !isStale(name)) continue;
    const t0 = performance.now();
    log(`building ${name} (dist/${name})…`);
    const { bytes, inputs } = await buildTarget(name);
    log(
      `built ${name}: ${inputs} modules into ${(bytes / 1e6).toFixed(1)} MB in ${Math.round(performance.now() - t0)} ms`,
    );
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
