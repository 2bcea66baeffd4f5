/**
 * Repls from a user's GitHub repositories through their GitHub grant, end to end: a GitHub sign-in
 * (OAuth against a fake GitHub, lib/testing/fake-github.ts, whose git host is git's own
 * http-backend on loopback) keeps the grant sealed; ListGitHubRepositories lists with it; a private
 * repository (which answers only that grant) is cloned at a branch and at a commit by real runners
 * in the default sandbox (its own network namespace where bubblewrap gives one: the repl cannot
 * reach the git host itself), through the runner's relay and core's git route; `git push` works through
 * the credential helper only where the repl was created with allow_push, and only to that
 * repository; no credential is left in `.git/config`, the workspace, the home or the state store.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { CloneStatus, type Repl, ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients, RunnerClients } from "../../../lib/client/clients.js";
import { type FakeGitHub, fakeGitHub, signInWithGitHub } from "../../../lib/testing/fake-github.js";
import { startGitServer, type TestGitServer, writeFiles } from "../../../lib/testing/git-server.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type Embedded, exec, startEmbedded } from "./embedded.js";

/** Waits until the repl runs cloned; fails with the reason when the clone failed. */
async function cloned(core: CoreClients, replId: string): Promise<Repl> {
  let last: Repl | undefined;
  for await (const m of core.repls.watchRepl({ replId }, { signal: AbortSignal.timeout(120_000) })) {
    last = m.repl;
    if (m.repl?.status === ReplStatus.RUNNING && m.repl.git?.status === CloneStatus.DONE) return m.repl;
  }
  assert.fail(`the clone failed: ${last?.lastError}`);
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

const commit = "git -c user.name=T -c user.email=t@example.invalid commit -q";

describe("repls from GitHub repositories with the user's grant", function () {
  this.timeout(300_000);
  let e: Embedded;
  let server: TestGitServer;
  let github: FakeGitHub;
  let octocat: CoreClients;
  let alice: CoreClients;
  const commits: Record<string, string> = {};

  before(async function () {
    requireProgram(this, "git");
    github = fakeGitHub({ clientId: "test-client", clientSecret: "test-secret", login: "octocat" });
    // Both private repositories answer only the grant, as GitHub does for a private repository.
    server = await startGitServer(
      { "octocat/private.git": github.accessToken, "octocat/other.git": github.accessToken },
      (req, res) => github.handle(req, res),
    );
    await server.repository("octocat/private", async (work, git) => {
      await writeFiles(work, { "README.md": "private\n" });
      git("add", ".");
      git("commit", "-q", "-m", "first");
      commits.first = git("rev-parse", "HEAD").trim();
      git("checkout", "-q", "-b", "dev");
      await writeFiles(work, { "DEV.md": "dev\n" });
      git("add", ".");
      git("commit", "-q", "-m", "dev");
      git("checkout", "-q", "main");
    });
    await server.repository("octocat/public", async (work, git) => {
      await writeFiles(work, { "PUBLIC.md": "public\n" });
      git("add", ".");
      git("commit", "-q", "-m", "public");
    });
    await server.repository("octocat/other", async (work, git) => {
      await writeFiles(work, { "OTHER.md": "other\n" });
      git("add", ".");
      git("commit", "-q", "-m", "other");
    });
    github.repositories = [
      {
        full_name: "octocat/private",
        clone_url: `${server.url}/octocat/private.git`,
        private: true,
        default_branch: "main",
        description: "a private one",
        pushed_at: "2026-11-30T10:00:00Z",
      },
      {
        full_name: "octocat/public",
        clone_url: `${server.url}/octocat/public.git`,
        private: false,
        default_branch: "main",
        description: null,
        pushed_at: null,
      },
    ];
    e = await startEmbedded({
      poolSize: 1,
      quota: 10,
      config: {
        DEVEX_GIT_ALLOW_HTTP: "true",
        GITHUB_CLIENT_ID: "test-client",
        GITHUB_CLIENT_SECRET: "test-secret",
        DEVEX_GITHUB_URL: server.url,
        DEVEX_GITHUB_API_URL: `${server.url}/api`,
      },
    });
    await signInWithGitHub(e.core.url);
    octocat = await e.login("octocat");
    alice = await e.login("alice");
  });
  after(async () => {
    await e?.close();
    await server?.close();
  });

  it("keeps the grant sealed from sign-in, and lists the user's repositories with it", async () => {
    assert.deepEqual(github.scopesAsked, ["repo"], "sign-in asks for the user's repositories");
    const stored = await e.state.getUser("octocat");
    assert.match(stored?.github ?? "", /^v1\./, "sealed");
    const raw = await readFile(join(e.dir, "state", "state.json"), "utf8").catch(() => "");
    assert.ok(raw.includes("octocat"), "the embedded state file was read");
    assert.ok(!raw.includes(github.accessToken), "the grant is not in the state store in the clear");

    const { repositories, more } = await octocat.repls.listGitHubRepositories({});
    assert.equal(more, false);
    assert.deepEqual(
      repositories.map((r) => [r.fullName, r.private, r.defaultBranch, r.cloneUrl]),
      [
        ["octocat/private", true, "main", `${server.url}/octocat/private.git`],
        ["octocat/public", false, "main", `${server.url}/octocat/public.git`],
      ],
    );
    assert.equal((await octocat.auth.getCurrentUser({})).githubGrant, true);
    assert.equal((await alice.auth.getCurrentUser({})).githubGrant, false);
    const none = await codeOf(alice.repls.listGitHubRepositories({}));
    assert.equal(none.code, Code.FailedPrecondition);
    assert.match(none.message, /sign in with GitHub/);
  });

  it("clones a private repository at a branch and at a commit, leaving no credential behind", async () => {
    const url = `${server.url}/octocat/private.git`;
    for (const [ref, probe, want] of [
      ["dev", "cat DEV.md", "dev\n"],
      [commits.first, "ls", "README.md\n"],
    ]) {
      const { repl } = await octocat.repls.createRepl({ name: "private", template: "", git: { url, ref } });
      assert.equal(repl?.git?.githubGrant, true);
      await cloned(octocat, repl!.replId);
      const runner = e.runner((await octocat.repls.startRepl({ replId: repl!.replId })).runner!);
      assert.equal((await exec(runner, probe)).out, want, ref);
      const config = (await exec(runner, "cat .git/config")).out;
      assert.match(config, new RegExp(`url = ${url.replace(/[.]/g, "\\.")}\n`), "origin is the repository");
      assert.doesNotMatch(config, /127\.0\.0\.1:\d+\/git|password|token|credential|extraheader/i);
      // Neither the grant nor a git token (a JWT) is in any file of the workspace or the home.
      const found = await exec(runner, `grep -rlE '${github.accessToken}|eyJhbGciOiJFZERTQSI' . "$HOME"; true`);
      assert.equal(found.out, "", `credential found in ${found.out}`);
      await octocat.repls.deleteRepl({ replId: repl!.replId });
    }
  });

  it("pushes through the credential helper with allow_push, to that repository only", async () => {
    const url = `${server.url}/octocat/private.git`;
    const { repl } = await octocat.repls.createRepl({ name: "pusher", template: "", git: { url, allowPush: true } });
    assert.equal(repl?.git?.source?.allowPush, true);
    await cloned(octocat, repl!.replId);
    const runner = e.runner((await octocat.repls.startRepl({ replId: repl!.replId })).runner!);
    // A `store` helper the user set up would write the token to disk: the relay's helper clears it.
    await exec(runner, "git config --global credential.helper store");
    const push = await exec(
      runner,
      `echo change > CHANGE.md && git add . && ${commit} -m change && git push origin HEAD:refs/heads/from-repl 2>&1`,
    );
    assert.equal(push.code, 0, push.out);
    const pushed = server.git(join(server.root, "octocat/private.git"), "log", "-1", "--format=%s", "from-repl");
    assert.equal(pushed.trim(), "change");
    assert.equal((await exec(runner, 'test -e "$HOME/.git-credentials" && echo stored; true')).out, "");
    // The audit log says the repl pushed with the owner's grant (its recorder writes in batches).
    let pushes: string[] = [];
    for (const deadline = Date.now() + 15_000; !pushes.length && Date.now() < deadline; ) {
      const { events } = await octocat.audit.listAuditEvents({ replId: repl!.replId });
      pushes = events
        .filter((x) => x.rpc === "git/push")
        .map((x) => `${x.userId} ${x.tokenId} ${x.details.repository}`);
      if (!pushes.length) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(pushes, [`octocat git ${url}`]);

    // Another repository on the same host: git does not take the relay (nor the grant) there, and fails.
    const other = await exec(runner, `git push ${server.url}/octocat/other.git HEAD:refs/heads/x 2>&1`);
    assert.notEqual(other.code, 0, other.out);
    for (const repo of ["octocat/other.git", "octocat/private.git"]) {
      assert.throws(() => server.git(join(server.root, repo), "rev-parse", "--verify", "-q", "x"), repo);
    }

    // The helper's token opens this repl's route only: not another repl's (of the same owner).
    const credential = await exec(runner, `printf 'url=${relayOf(await envOf(runner))}/\\n\\n' | git credential fill`);
    const token = /^password=(.+)$/m.exec(credential.out)?.[1];
    assert.ok(token, credential.out);
    const { repl: second } = await octocat.repls.createRepl({ name: "second", template: "", git: { url } });
    await cloned(octocat, second!.replId);
    const auth = `Basic ${Buffer.from(`devex:${token}`).toString("base64")}`;
    const refs = (replId: string) =>
      fetch(`${e.core.url}/git/${replId}/info/refs?service=git-upload-pack`, { headers: { authorization: auth } });
    assert.equal((await refs(repl!.replId)).status, 200);
    const wrong = await refs(second!.replId);
    assert.equal(wrong.status, 403);
    assert.match(await wrong.text(), /another repl/);
    const anonymous = await fetch(`${e.core.url}/git/${repl!.replId}/info/refs?service=git-upload-pack`);
    assert.equal(anonymous.status, 401);
    await octocat.repls.deleteRepl({ replId: second!.replId });
    await octocat.repls.deleteRepl({ replId: repl!.replId });
  });

  it("clones a public repository without the grant, as anyone would", async () => {
    const url = `${server.url}/octocat/public.git`;
    const { repl } = await octocat.repls.createRepl({ name: "public", template: "", git: { url } });
    assert.equal(repl?.git?.githubGrant, false, "a public repository needs no grant");
    // Git goes to the host itself, not through the relay: from the sandbox's own network namespace
    // this loopback host is out of reach (git-clone.e2e clones public repositories on the host's network).
    let last: Repl | undefined;
    for await (const m of octocat.repls.watchRepl({ replId: repl!.replId }, { signal: AbortSignal.timeout(120_000) })) {
      last = m.repl;
    }
    if (!e.isolation.includes("one private network per repl")) return; // the host's network: it may have cloned
    assert.match(last?.lastError ?? "", /clone failed: .*Failed to connect to 127\.0\.0\.1/);
  });

  it("without allow_push git fetches but cannot push, and says why", async () => {
    const url = `${server.url}/octocat/private.git`;
    const { repl } = await octocat.repls.createRepl({ name: "reader", template: "", git: { url } });
    await cloned(octocat, repl!.replId);
    const runner = e.runner((await octocat.repls.startRepl({ replId: repl!.replId })).runner!);
    const fetched = await exec(runner, "git fetch -q origin dev && git log -1 --format=%s FETCH_HEAD");
    assert.equal(fetched.out, "dev\n");
    const push = await exec(runner, `${commit} --allow-empty -m nope && git push origin HEAD:refs/heads/nope 2>&1`);
    assert.notEqual(push.code, 0);
    assert.match(push.out, /pushing from this repl is not allowed/);
    assert.throws(() => server.git(join(server.root, "octocat/private.git"), "rev-parse", "--verify", "-q", "nope"));
    await octocat.repls.deleteRepl({ replId: repl!.replId });
  });

  it("refuses allow_push without a grant or off GitHub, before creating anything", async () => {
    const url = `${server.url}/octocat/private.git`;
    const noGrant = await codeOf(alice.repls.createRepl({ name: "x", template: "", git: { url, allowPush: true } }));
    assert.equal(noGrant.code, Code.FailedPrecondition);
    assert.match(noGrant.message, /allow_push: .*sign in with GitHub/);
    const elsewhere = await codeOf(
      octocat.repls.createRepl({
        name: "x",
        template: "",
        git: { url: "https://example.invalid/a/b.git", allowPush: true },
      }),
    );
    assert.equal(elsewhere.code, Code.FailedPrecondition);
    assert.match(elsewhere.message, /for repositories on http:\/\/127\.0\.0\.1:\d+ only/);
    assert.deepEqual((await alice.repls.listRepls({})).repls, []);
  });
});

const envOf = async (runner: RunnerClients) => (await exec(runner, "env")).out;
/** The relay's URL, from the git configuration the runner put in the environment. */
const relayOf = (env: string) => {
  const m = /=url\.(http:\/\/127\.0\.0\.1:\d+)\/git\//.exec(env);
  assert.ok(m, `no relay in the environment: ${env}`);
  return m[1];
};
