/**
 * `devex create --git` end to end: the real CLI as a child process against the embedded core with
 * real runners, cloning from a git server on loopback (lib/testing/git-server.ts; the sandbox
 * shares the host network so that the clone reaches it). A branch is cloned with the clone's
 * progress shown under a real PTY, the commit printed and `ls` showing the source; a missing ref
 * exits 1 with git's reason and leaves no repl. Without a GitHub sign-in (this core has none),
 * `github repos`, `create --github` and `--allow-push` fail with core's reason and make nothing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGitServer, type TestGitServer, writeFiles } from "../../lib/testing/git-server.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { type Embedded, startEmbedded } from "../../services/core/test/embedded.js";
import { cliEnv, devexBin, PtyRun, runCli } from "./cli-process.js";

describe("devex create --git (embedded core, git server on loopback)", function () {
  this.timeout(180_000);
  let e: Embedded;
  let server: TestGitServer;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const commits: Record<string, string> = {};
  const ptys: PtyRun[] = [];

  before(async function () {
    requireProgram(this, "git");
    server = await startGitServer();
    await server.repository("app", async (work, git) => {
      // Enough objects and bytes that git reports its progress more than once.
      const files: Record<string, string | Buffer> = {
        "README.md": "main\n",
        "blob.bin": randomBytes(2 * 1024 * 1024),
      };
      for (let i = 0; i < 200; i++) files[`src/m${i}.js`] = `export const n = ${i};\n`;
      await writeFiles(work, files);
      git("add", ".");
      git("commit", "-q", "-m", "first");
      commits.main = git("rev-parse", "HEAD").trim();
      git("checkout", "-q", "-b", "feature");
      await writeFiles(work, { "FEATURE.md": "on the branch\n" });
      git("add", ".");
      git("commit", "-q", "-m", "feature");
      commits.feature = git("rev-parse", "HEAD").trim();
      git("checkout", "-q", "main");
    });
    e = await startEmbedded({ poolSize: 1, quota: 10, sandboxNetwork: true, config: { DEVEX_GIT_ALLOW_HTTP: "true" } });
    home = await mkdtemp(join(tmpdir(), "devex-cli-git-"));
    env = cliEnv(join(home, "alice"));
    const token = (await issueApiToken(e.state, "alice", "cli")).secret;
    const login = await runCli(["login", "--url", e.core.url, "--token", token], env);
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    for (const p of ptys) p.kill();
    await e?.close();
    await server?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("clones a branch showing progress on a terminal, prints the id and the commit; ls and exec see it", async () => {
    const url = `${server.url}/app.git`;
    const p = new PtyRun(process.execPath, [devexBin, "create", "--git", `${url}#feature`, "--name", "feat"], env);
    ptys.push(p);
    const code = await p.exited;
    const output = p.output.replace(/\r\n/g, "\n");
    assert.equal(code, 0, output);
    const id = new RegExp(`cloning ${url.replace(/[.]/g, "\\.")}#feature into ([a-z0-9-]+)…`).exec(output)?.[1];
    assert.ok(id, output);
    assert.match(output, new RegExp(`^${id}$`, "m"), "the id on a line of its own");
    const clearLine = "\r\u001b[K";
    assert.ok(output.includes(`${clearLine}cloning: `), "git's progress, rewritten on one line");
    assert.match(output, /cloning: \d+\/\d+ objects, \d+\.\d MiB/);
    assert.match(output, new RegExp(`^${commits.feature}$`, "m"), "the commit checked out");

    const ls = await runCli(["ls"], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^ID\s+NAME\s+TEMPLATE\s+STATE\s+NETWORK\s+SETUP\s+SOURCE$/m);
    const row = ls.stdout.split("\n").find((l) => l.startsWith(id!));
    assert.match(row ?? "", /\bfeat\b.*\brunning\b.*#feature @[0-9a-f]{12}$/);
    assert.ok(row?.endsWith(`${url}#feature @${commits.feature.slice(0, 12)}`), row);

    const cat = await runCli(["exec", id!, "--", "cat", "FEATURE.md"], env);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, "on the branch\n");
    assert.equal((await runCli(["rm", id!, "--yes"], env)).code, 0);
  });

  it("without a terminal: the id, then the commit on stdout; the name comes from the URL", async () => {
    const r = await runCli(["create", "--git", `${server.url}/app.git`, "--full-history"], env);
    assert.equal(r.code, 0, r.stderr);
    const [id, commit] = r.stdout.trim().split("\n");
    assert.equal(commit, commits.main);
    assert.ok(!r.stderr.includes("\u001b"), "no progress line when stderr is not a terminal");
    assert.match(r.stderr, new RegExp(`^cloning .* into ${id}…\n${id} runs, cloned at ${commit}`));
    const ls = await runCli(["ls"], env);
    assert.match(ls.stdout, new RegExp(`^${id}\\s+app\\s`, "m"), "named after the repository");
    const shallow = await runCli(["exec", id, "--", "git", "rev-parse", "--is-shallow-repository"], env);
    assert.equal(shallow.stdout, "false\n", "--full-history: the whole history");
    assert.equal((await runCli(["rm", id, "--yes"], env)).code, 0);
  });

  it("a missing branch exits 1 with git's reason, and no repl is left", async () => {
    const r = await runCli(["create", "--git", `${server.url}/app.git#nope`, "--name", "bad"], env);
    assert.equal(r.code, 1, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[a-z0-9-]+$/, "the id was printed before the clone failed");
    assert.match(
      r.stderr,
      new RegExp(
        `devex: clone failed: Remote branch nope not found in upstream origin \\(the repl ${id} was deleted\\)\n$`,
      ),
    );
    const ls = await runCli(["ls"], env);
    assert.doesNotMatch(ls.stdout, new RegExp(id));
  });

  it("usage mistakes exit 2; a URL core refuses is one line, exit 1", async () => {
    for (const args of [["--full-history", "--template", "node"], ["--git", `${server.url}/app.git#`], []]) {
      const r = await runCli(["create", ...args], env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /usage: devex/);
    }
    const ssh = await runCli(["create", "--git", "ssh://git@127.0.0.1/app.git"], env);
    assert.equal(ssh.code, 1);
    assert.match(ssh.stderr, /^devex: invalid argument: .*must start with https:\/\/ or http:\/\//);
    assert.equal(ssh.stdout, "", "no repl was made");
  });

  it("without GitHub sign-in: github repos, create --github and --allow-push fail in one line saying so, making nothing", async () => {
    for (const args of [
      ["github", "repos"],
      ["create", "--github"],
      ["create", "--git", `${server.url}/app.git`, "--allow-push"],
    ]) {
      const r = await runCli(args, env);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^devex: .*GitHub.*\n$/, args.join(" "));
      assert.equal(r.stdout, "", `${args.join(" ")}: no list, no repl`);
    }
    assert.doesNotMatch((await runCli(["ls"], env)).stdout, /\bapp\b/);
  });
});
