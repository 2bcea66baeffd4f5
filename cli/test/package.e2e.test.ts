/**
 * The CLI as a user installs it on its own: dist/cli (built by scripts/build.mjs) packed with
 * `npm pack`, installed with `npm install -g` into a temp prefix (no registry: the package has no
 * dependencies), and run from outside the checkout against a real embedded core; its bash completion
 * under a real bash.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../../lib/kit/project-root.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { type Embedded, startEmbedded } from "../../services/core/test/embedded.js";
import { cliEnv } from "./cli-process.js";

const run = promisify(execFile);

describe("devex CLI installed on its own (npm pack + npm install -g)", function () {
  this.timeout(120_000);
  let dir: string;
  let devex: string;
  let e: Embedded;

  before(async function () {
    requireProgram(this, "bash");
    dir = await mkdtemp(join(tmpdir(), "devex-cli-package-"));
    await mkdir(join(dir, "pack"));
    await run("npm", ["pack", join(projectRoot, "dist/cli"), "--pack-destination", join(dir, "pack")], { cwd: dir });
    const [tarball] = await readdir(join(dir, "pack"));
    const prefix = join(dir, "prefix");
    await run(
      "npm",
      ["install", "-g", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, join(dir, "pack", tarball)],
      {
        cwd: dir,
      },
    );
    devex = join(prefix, "bin", "devex");
    e = await startEmbedded();
  });
  after(async () => {
    await e?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("holds only the bundle and answers help, login and ls from outside the checkout", async () => {
    const installed = join(dir, "prefix", "lib", "node_modules", "devex-cli");
    const files = await readdir(installed, { recursive: true });
    assert.ok(!files.some((f) => f.includes("node_modules")), `no dependencies installed: ${files}`);
    assert.ok(!files.some((f) => f.endsWith(".ts")), "no TypeScript sources");

    const env = cliEnv(join(dir, "config"));
    const help = await run(devex, ["--help"], { cwd: dir, env });
    assert.match(help.stdout, /^usage: devex <command>/);

    const { secret } = await issueApiToken(e.state, "carol", "packaged cli");
    const login = execFile(devex, ["login", "--url", e.core.url, "--token", "-"], { cwd: dir, env });
    login.stdin?.end(secret);
    await new Promise<void>((resolve, reject) =>
      login.once("exit", (c) => (c === 0 ? resolve() : reject(new Error(`login exited ${c}`)))),
    );
    await run(devex, ["create", "--template", "node", "--name", "packaged"], { cwd: dir, env });
    const ls = await run(devex, ["ls"], { cwd: dir, env });
    assert.match(ls.stdout, /packaged/);
  });

  it("bash completion completes commands and a command's options", async () => {
    const script = (await run(devex, ["completion", "bash"], { cwd: dir })).stdout;
    const complete = async (words: string[]) => {
      const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _devex; echo "\${COMPREPLY[@]}"`;
      return (await run("bash", ["--norc", "--noprofile", "-c", line])).stdout.trim().split(/\s+/);
    };
    assert.deepEqual(await complete(["devex", "cr"]), ["create"]);
    assert.deepEqual(await complete(["devex", "create", "--t"]), ["--template"]);
    assert.deepEqual((await complete(["devex", "network", "x", "--"])).sort(), [
      "--allow",
      "--allow-all",
      "--default",
      "--deny-all",
    ]);
    await assert.rejects(run(devex, ["completion", "fish"], { cwd: dir }), /completion needs a shell/);
  });
});
