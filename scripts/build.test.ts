/**
 * scripts/build.mjs on a project of its own (a temp dir with a few modules): what makes a target
 * stale, and that concurrent builds and processes running from a target never find it missing,
 * half written or without the chunks they loaded from.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runnerNodeFlags } from "../lib/contracts/runner-node-flags.mjs";
import { projectRoot } from "../lib/kit/project-root.js";
import { buildAll, isStale } from "./build.mjs";

const run = promisify(execFile);
const buildScript = join(import.meta.dirname, "build.mjs");
const entries = { app: { main: "src/main.ts" } };

/** A module that prints `label` and loads a lazy one (a chunk of its own) when asked on stdin. */
async function writeProject(root: string, label: string) {
  await mkdir(join(root, "src"), { recursive: true });
  await writeFile(join(root, "src/dep.ts"), `export const label: string = ${JSON.stringify(label)};\n`);
  await writeFile(join(root, "src/lazy.ts"), `export const lazy = () => ${JSON.stringify(`lazy ${label}`)};\n`);
  await writeFile(
    join(root, "src/main.ts"),
    [
      'import { label } from "./dep.js";',
      "console.log(label);",
      'if (process.argv[2] === "--wait") {',
      '  process.stdin.once("data", async () => console.log((await import("./lazy.js")).lazy()));',
      "}",
    ].join("\n"),
  );
}

/** The bundle a code-cached entry's loader runs (an absolute path) and its cache's digest. */
async function cachedBundle(loader: string): Promise<{ bundle: string; digest: string }> {
  const m = /runCached\(new URL\("\.\/([^"]+)", import\.meta\.url\), "([0-9a-f]{64})"\)/.exec(
    await readFile(loader, "utf8"),
  );
  assert.ok(m, `${loader} runs a bundle from its code cache`);
  return { bundle: join(loader, "..", m[1]), digest: m[2] };
}

/** Why `bundle`'s code cache is not used in a process with `nodeFlags`: "damaged", "refused", or "undefined" (it is). */
async function cacheRejected(c: { bundle: string; digest: string }, nodeFlags: string[]): Promise<string> {
  const codeCache = join(c.bundle, "../../code-cache.mjs");
  const code = `import { compileCached } from ${JSON.stringify(codeCache)}; console.log(String(compileCached(${JSON.stringify(c.bundle)}, "${c.digest}").rejected));`;
  return (await run(process.execPath, [...nodeFlags, "--input-type=module", "-e", code])).stdout.trim();
}

/** Runs buildAll in a process of its own; resolves with what it logged. */
function buildInChild(root: string): Promise<string> {
  const code = `import(${JSON.stringify(buildScript)}).then((m) => m.buildAll({ root: ${JSON.stringify(root)}, entries: ${JSON.stringify(entries)}, ifStale: true, log: (l) => console.log(l) }))`;
  return run(process.execPath, ["-e", code]).then((r) => r.stdout);
}

describe("scripts/build.mjs", function () {
  this.timeout(60_000);
  let root: string;
  const quiet = () => {};
  const main = () => join(root, "dist/app/main.mjs");

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "devex-build-"));
    await writeProject(root, "one");
    await buildAll({ root, entries, log: quiet });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("a built target runs and is fresh; it is stale after an input changes, goes back in time, or goes away", async () => {
    assert.equal((await run(process.execPath, [main()])).stdout, "one\n");
    assert.equal(isStale("app", { root }), false);

    await writeProject(root, "two");
    assert.equal(isStale("app", { root }), true, "an edited input");
    await buildAll({ root, entries, ifStale: true, log: quiet });
    assert.equal(isStale("app", { root }), false);
    assert.equal((await run(process.execPath, [main()])).stdout, "two\n");

    // A file restored from a backup or an archive keeps its older mtime: still a change.
    await utimes(join(root, "src/dep.ts"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.equal(isStale("app", { root }), true, "an input with an older mtime");
    await buildAll({ root, entries, ifStale: true, log: quiet });

    await writeFile(join(root, "package-lock.json"), "{}");
    assert.equal(isStale("app", { root }), true, "a lockfile that appeared");
    await buildAll({ root, entries, ifStale: true, log: quiet });
    assert.equal(isStale("app", { root }), false);
    await unlink(join(root, "package-lock.json"));
    assert.equal(isStale("app", { root }), true, "a lockfile that went away");

    await buildAll({ root, entries, ifStale: true, log: quiet });
    await unlink(join(root, "dist/app/meta.json"));
    assert.equal(isStale("app", { root }), true, "no record of the build");
  });

  it("builds racing each other build once, and a process started meanwhile always finds the target whole", async () => {
    await writeProject(root, "three");
    let runs = 0;
    let failures = "";
    let racing = true;
    const runner = (async () => {
      while (racing) {
        const r = await run(process.execPath, [main()]).catch((e: Error) => ({ stdout: `FAILED ${e.message}` }));
        runs++;
        if (!/^(one|three)\n$/.test(r.stdout)) failures += `${r.stdout}\n`;
      }
    })();
    const logs = await Promise.all([buildInChild(root), buildInChild(root), buildInChild(root)]);
    racing = false;
    await runner;
    assert.equal(failures, "", `a run during the builds failed:\n${failures}`);
    assert.ok(runs > 0);
    assert.equal(logs.join("").match(/^built app/gm)?.length, 1, `one of the three built it:\n${logs.join("")}`);
    assert.equal((await run(process.execPath, [main()])).stdout, "three\n");
    assert.ok(!existsSync(join(root, "dist/.lock-app")), "the lock is released");
  });

  it("a process that started before a rebuild still loads its lazy chunk afterwards", async () => {
    const child = spawn(process.execPath, [main(), "--wait"], { stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    await writeProject(root, "four");
    await buildAll({ root, entries, ifStale: true, log: quiet });
    child.stdin.end("go\n");
    const code = await exited;
    assert.equal(code, 0, out);
    assert.equal(out, "one\nlazy one\n", "the old build's chunk is still there");
    assert.equal((await run(process.execPath, [main()])).stdout, "four\n", "a new process runs the new build");
  });

  it("a lock left by a process that died is broken, not waited on forever", async () => {
    await mkdir(join(root, "dist/.lock-app"));
    await writeFile(join(root, "dist/.lock-app/pid"), "999999999");
    await writeProject(root, "five");
    await buildAll({ root, entries, ifStale: true, log: quiet });
    assert.equal((await run(process.execPath, [main()])).stdout, "five\n");
  });

  it("a code-cached target runs from a V8 cache made under its processes' flags, and a rebuild leaves the old bundle whole", async () => {
    const flags = ["--optimize-for-size"];
    const codeCache = { app: { nodeFlags: flags, entries: ["main"] } };
    // Whatever NODE_OPTIONS the build runs under, the cache is made under `flags` alone.
    const nodeOptions = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${nodeOptions ?? ""} --max-old-space-size=3000`;
    try {
      await buildAll({ root, entries, codeCache, log: quiet });
    } finally {
      process.env.NODE_OPTIONS = nodeOptions;
    }
    const ran = await run(process.execPath, [...flags, main()]);
    assert.deepEqual([ran.stdout, ran.stderr], ["one\n", ""]);
    const first = await cachedBundle(main());
    assert.equal(await cacheRejected(first, flags), "undefined", "used under the flags it was made with");
    assert.equal(await cacheRejected(first, []), "refused", "refused under other flags");
    const other = await run(process.execPath, [main()]);
    assert.equal(other.stdout, "one\n", "and the bundle runs all the same");
    assert.match(other.stderr, /code cache is for another Node or other Node flags; compiling instead/);

    // V8 checks no cache's content and would crash on a damaged one: the loader checks its digest.
    const cache = await readFile(`${first.bundle}.cache`);
    cache[cache.length >> 1] ^= 0xff;
    await writeFile(`${first.bundle}.cache`, cache);
    const damaged = await run(process.execPath, [...flags, main()]);
    assert.equal(damaged.stdout, "one\n");
    assert.match(damaged.stderr, /code cache is damaged; compiling instead/);

    await writeProject(root, "six");
    await buildAll({ root, entries, codeCache, ifStale: true, log: quiet });
    const second = await cachedBundle(main());
    assert.notEqual(second.bundle, first.bundle, "bundles are named by their content");
    assert.ok(existsSync(first.bundle), "the old bundle stays for processes that loaded it");
    assert.equal(await cacheRejected(second, flags), "undefined");
    assert.equal((await run(process.execPath, [...flags, main()])).stdout, "six\n");

    // A cache holds one Node build's compiled code: another Node makes the target stale.
    const metaFile = join(root, "dist/app/meta.json");
    const meta = JSON.parse(await readFile(metaFile, "utf8"));
    assert.equal(meta.node, process.version);
    await writeFile(metaFile, JSON.stringify({ ...meta, node: "v0.0.1" }));
    assert.equal(isStale("app", { root }), true, "built by another Node");
  });
});

describe("the runner's bundles (dist/runner)", () => {
  it("runners run from a code cache that V8 accepts under runnerNodeFlags", async function () {
    this.timeout(30_000);
    for (const entry of ["main", "pooled"]) {
      const bundle = await cachedBundle(join(projectRoot, "dist/runner", `${entry}.mjs`));
      assert.equal(await cacheRejected(bundle, runnerNodeFlags), "undefined", `${entry}: its cache is used`);
    }
  });

  it("leave out what runners do not use: full zod and its languages", async () => {
    const { bundle } = await cachedBundle(join(projectRoot, "dist/runner/main.mjs"));
    const code = await readFile(bundle, "utf8");
    // zod's Dutch messages, and a class only the full zod has: a namespace re-export once kept both.
    for (const text of ["Ongeldige invoer", '"ZodString"']) assert.ok(!code.includes(text), `${text} is in ${bundle}`);
  });

  it("map stack traces to the sources with --enable-source-maps", async () => {
    const cli = join(projectRoot, "dist/runner/cli.mjs");
    const failed = await run(process.execPath, [
      "--enable-source-maps",
      cli,
      "mint",
      "--key",
      "/nonexistent",
      "--repl",
      "r",
    ]).then(
      () => assert.fail("minting with a missing key succeeded"),
      (e: { stderr: string }) => e.stderr,
    );
    assert.match(failed, /ENOENT[\s\S]*services\/runner\/src\/cli\.ts:\d+/);
  });
});
