/**
 * Repls from git repositories, cloned by real runners in the default sandbox from a git server on
 * loopback (git http-backend, lib/testing/git-server.ts; the sandbox shares the host network so
 * that the clone reaches it, and only it). Creates from the default branch, a branch, a tag and a
 * commit, shallow and whole, with progress on WatchRepl; a wrong URL, a missing ref, an over-size
 * repository and one that asks for credentials each end with the repl gone (its files too) and
 * WatchRepl's last message saying why; the workspace's .git/config holds only the URL.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { CloneStatus, type Repl, ReplStatus, type Setup, SetupStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { listAll } from "../../../lib/blob/store.js";
import type { CoreClients } from "../../../lib/client/clients.js";
import { startGitServer, type TestGitServer, writeFiles } from "../../../lib/testing/git-server.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type Embedded, exec, startEmbedded } from "./embedded.js";

interface Watched {
  last: Repl | undefined;
  phases: Set<string>;
  /** True when the stream ended because the repl was deleted. */
  ended: boolean;
}

/** Watches a new repl until it runs cloned, or is gone. */
async function watchClone(core: CoreClients, replId: string): Promise<Watched> {
  const w: Watched = { last: undefined, phases: new Set(), ended: false };
  const signal = AbortSignal.timeout(120_000);
  for await (const m of core.repls.watchRepl({ replId }, { signal })) {
    w.last = m.repl;
    if (m.progress?.phase) w.phases.add(`${m.progress.phase} while ${ReplStatus[m.repl?.status ?? 0]}`);
    if (m.repl?.status === ReplStatus.RUNNING && m.repl.git?.status === CloneStatus.DONE) return w;
  }
  w.ended = true;
  return w;
}

/** Polls until `get` yields a setup that has ended. */
async function waitFor(get: () => Promise<Setup | undefined>): Promise<Setup> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await get();
    if (s && (s.status === SetupStatus.SUCCEEDED || s.status === SetupStatus.FAILED)) return s;
    assert.ok(Date.now() < deadline, `setup still ${SetupStatus[s?.status ?? 0]}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  assert.fail("the call succeeded");
}

describe("repls from git repositories, cloned in the sandbox", function () {
  this.timeout(300_000);
  let e: Embedded;
  let server: TestGitServer;
  let templates: string;
  let alice: CoreClients;
  let bob: CoreClients;
  const commits: Record<string, string> = {};

  before(async function () {
    requireProgram(this, "git");
    server = await startGitServer({ "private.git": "right-password" });
    await server.repository("app", async (work, git) => {
      await writeFiles(work, { "README.md": "first\n", "src/index.js": "console.log(1)\n" });
      git("add", ".");
      git("commit", "-q", "-m", "first");
      commits.first = git("rev-parse", "HEAD").trim();
      git("tag", "v1");
      git("checkout", "-q", "-b", "feature");
      await writeFiles(work, { "FEATURE.md": "on the branch\n" });
      git("add", ".");
      git("commit", "-q", "-m", "feature");
      git("checkout", "-q", "main");
      await writeFiles(work, { "README.md": "second\n" });
      git("commit", "-q", "-am", "second");
      commits.main = git("rev-parse", "HEAD").trim();
    });
    await server.repository("private", async (work, git) => {
      await writeFiles(work, { "secret.txt": "s\n" });
      git("add", ".");
      git("commit", "-q", "-m", "one");
    });
    await server.repository("big", async (work, git) => {
      // Random bytes do not compress: about 3 MiB arrive, over the 1 MiB limit below.
      await writeFiles(work, { "blob.bin": randomBytes(3 * 1024 * 1024) });
      git("add", ".");
      git("commit", "-q", "-m", "big");
    });
    templates = await mkdtemp(join(tmpdir(), "devex-git-templates-"));
    await mkdir(join(templates, "lister"));
    await writeFile(
      join(templates, "lister", "template.json"),
      JSON.stringify({ title: "Lister", setup_command: "ls > .setup-saw", run_command: "cat README.md" }),
    );
    e = await startEmbedded({
      poolSize: 1,
      quota: 20,
      sandboxNetwork: true,
      templatesDir: templates,
      config: { DEVEX_GIT_ALLOW_HTTP: "true", DEVEX_GIT_MAX_SIZE: String(1024 * 1024) },
    });
    alice = await e.login("alice");
    bob = await e.login("bob");
  });
  after(async () => {
    await e?.close();
    await server?.close();
    if (templates) await rm(templates, { recursive: true, force: true });
  });

  it("clones the default branch with progress, and the repl runs with git working in it", async () => {
    const url = `${server.url}/app.git`;
    const { repl } = await alice.repls.createRepl({ name: "app", template: "lister", git: { url } });
    assert.equal(repl?.git?.status, CloneStatus.CLONING);
    const early = await codeOf(alice.repls.startRepl({ replId: repl!.replId }));
    assert.equal(early.code, Code.FailedPrecondition, "no start of a half-cloned repl");
    assert.match(early.message, /is being cloned from .*WatchRepl shows the progress/);
    const w = await watchClone(alice, repl!.replId);
    assert.equal(w.ended, false, `the clone failed: ${w.last?.lastError}`);
    assert.ok(w.phases.has("clone while RUNNING"), `phases seen: ${[...w.phases].join(", ")}`);
    assert.ok(![...w.phases].some((p) => p.startsWith("clone while STOPPED")), [...w.phases].join(", "));
    assert.equal(w.last?.git?.commit, commits.main);
    assert.equal(w.last?.runCommand, "cat README.md", "the template's settings, not its files");

    const { runner: access } = await alice.repls.startRepl({ replId: repl!.replId });
    const runner = e.runner(access!);
    // The template's setup ran on the clone, not before it.
    const setup = await waitFor(async () => (await alice.repls.getRepl({ replId: repl!.replId })).repl?.setup);
    assert.equal(setup.status, SetupStatus.SUCCEEDED, setup.message);
    assert.equal((await exec(runner, "cat .setup-saw")).out, "README.md\nsrc\n");
    const ls = await exec(runner, "ls -A | sort | tr '\\n' ' '");
    assert.equal(ls.out, ".git .setup-saw README.md src ");
    assert.equal((await exec(runner, "cat README.md")).out, "second\n");
    assert.equal((await exec(runner, "git rev-parse --is-shallow-repository")).out, "true\n");
    const config = (await exec(runner, "cat .git/config")).out;
    assert.match(config, new RegExp(`url = ${url.replace(/[.]/g, "\\.")}`));
    assert.doesNotMatch(config, /password|token|extraheader|credential/i);
    const who = await exec(runner, "stat -c %U .git/config && git status --short && git log --oneline | wc -l");
    assert.equal(who.out, "devex\n?? .setup-saw\n1\n", "owned by the repl's user, one commit (shallow)");
    // What was cloned is the repl's: it survives a stop and start.
    await alice.repls.stopRepl({ replId: repl!.replId });
    const again = e.runner((await alice.repls.startRepl({ replId: repl!.replId })).runner!);
    assert.equal((await exec(again, "git log -1 --format=%H")).out.trim(), commits.main);
    await alice.repls.deleteRepl({ replId: repl!.replId });
  });

  it("clones a branch, a tag and a commit, shallow or with the whole history", async () => {
    const url = `${server.url}/app.git`;
    const cases: Array<[string, boolean, string, string]> = [
      ["feature", false, "cat FEATURE.md", "on the branch\n"],
      ["v1", false, "cat README.md", "first\n"],
      [commits.first, false, "cat README.md", "first\n"],
      ["main", true, "git log --oneline | wc -l", "2\n"],
    ];
    for (const [ref, fullHistory, probe, want] of cases) {
      const { repl } = await alice.repls.createRepl({ name: "ref", template: "", git: { url, ref, fullHistory } });
      const w = await watchClone(alice, repl!.replId);
      assert.equal(w.ended, false, `${ref}: ${w.last?.lastError}`);
      const runner = e.runner((await alice.repls.startRepl({ replId: repl!.replId })).runner!);
      assert.equal((await exec(runner, probe)).out, want, `${ref} (whole history: ${fullHistory})`);
      await alice.repls.deleteRepl({ replId: repl!.replId });
    }
  });

  it("a wrong URL, a missing ref, an over-size or private repository: the repl is gone, saying why", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [`${server.url}/nothing-here.git`, "", /clone failed: .*not found/],
      [`${server.url}/app.git`, "no-such-branch", /clone failed: .*no-such-branch/],
      [`${server.url}/big.git`, "", /clone failed: the repository is larger than this server's limit of 1 MiB/],
      [`${server.url}/private.git`, "", /clone failed: the repository asks for credentials/],
    ];
    for (const [url, ref, why] of cases) {
      const { repl } = await alice.repls.createRepl({ name: "bad", template: "", git: { url, ref } });
      const w = await watchClone(alice, repl!.replId);
      assert.equal(w.ended, true, `${url}#${ref} was cloned`);
      assert.match(w.last?.lastError ?? "", why);
      // Whoever looks later (a client that was not watching yet) still learns why; others do not.
      const later = await codeOf(alice.repls.getRepl({ replId: repl!.replId }));
      assert.equal(later.code, Code.NotFound);
      assert.match(later.message, new RegExp(`repl ${repl!.replId} was deleted: clone failed`));
      const stranger = await codeOf(bob.repls.getRepl({ replId: repl!.replId }));
      assert.equal(stranger.message, `repl ${repl!.replId} not found`);
      assert.deepEqual(await listAll(e.blobs, `repl/alice/${repl!.replId}/`), [], "no files left");
      assert.deepEqual(await listAll(e.blobs, `home/alice/${repl!.replId}/`), []);
    }
    assert.deepEqual((await alice.repls.listRepls({})).repls, [], "no half-made repl is left");
  });

  it("refuses what it cannot clone safely, before creating anything", async () => {
    const cases: Array<[object, RegExp]> = [
      [{ url: "ssh://git@127.0.0.1/app.git" }, /must start with https:\/\/ or http:\/\//],
      [{ url: "file:///etc" }, /must start with/],
      [{ url: "ext::sh -c touch% /tmp/pwned" }, /not a URL|must start with/],
      [{ url: `http://user:pass@${server.url.slice(7)}/app.git` }, /must not hold a user name or password/],
      [{ url: `${server.url}/app.git`, ref: "--upload-pack=touch" }, /ref/],
    ];
    for (const [git, message] of cases) {
      const got = await codeOf(alice.repls.createRepl({ name: "x", template: "", git }));
      assert.equal(got.code, Code.InvalidArgument, JSON.stringify(git));
      assert.match(got.message, message);
    }
    const none = await codeOf(alice.repls.createRepl({ name: "x", template: "" }));
    assert.equal(none.code, Code.InvalidArgument);
    assert.match(none.message, /name a template/);
    assert.deepEqual((await alice.repls.listRepls({})).repls, []);
  });
});
