/**
 * Core's git route and GetGitCredential against a real git server (git http-backend on loopback,
 * standing in for GitHub's git host; its repository answers only the owner's grant): what passes
 * (git's smart-HTTP requests for the repl's repository, with a live token for that repl, push
 * only with allow_push) and what is refused with which status and words (no, expired, forged or
 * another audience's or repl's token; other paths and methods; an owner without a grant; a grant
 * GitHub refuses). git-github.e2e shows the whole way from git in a sandbox.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { startGitServer, type TestGitServer, writeFiles } from "../../../lib/testing/git-server.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { sealGrant } from "../src/repl/github.js";
import { createSecretBox } from "../src/repl/secret-box.js";
import type { ReplRecord } from "../src/state/store.js";
import { startTestCore, TEST_SECRETS_KEY, type TestCore } from "./harness.js";

const GRANT = "gho_theOwnersGrant";

function record(replId: string, url: string, git: Partial<NonNullable<ReplRecord["git"]>>): ReplRecord {
  const now = Date.now();
  return {
    replId,
    name: replId,
    template: "",
    owner: "ann",
    status: "running",
    createTime: now,
    updateTime: now,
    persistTime: 0,
    lastError: "",
    egress: { mode: "allow_all", allow: [] } as unknown as ReplRecord["egress"],
    runCommand: "",
    git: { url, ref: "", fullHistory: false, status: "done", startTime: now, githubGrant: true, ...git },
  };
}

describe("core's git route", function () {
  this.timeout(60_000);
  let server: TestGitServer;
  let t: TestCore;
  const basic = (token: string) => `Basic ${Buffer.from(`devex:${token}`).toString("base64")}`;
  const token = (replId: string, scope: string[], ttl = 600, now = Date.now()) =>
    t.signer.mint({ aud: "git", sub: "ann", repl: replId, scope }, ttl, now);
  const get = (path: string, auth?: string, method = "GET") =>
    fetch(`${t.core.url}${path}`, { method, headers: auth ? { authorization: auth } : {} });
  const refs = (replId: string, service = "git-upload-pack") => `/git/${replId}/info/refs?service=${service}`;

  before(async function () {
    requireProgram(this, "git");
    server = await startGitServer({ "ann/app.git": GRANT, "ann/gone.git": "another-grant" });
    for (const name of ["ann/app", "ann/gone"]) {
      await server.repository(name, async (work, git) => {
        await writeFiles(work, { "README.md": "hi\n" });
        git("add", ".");
        git("commit", "-q", "-m", "one");
      });
    }
    t = await startTestCore({
      github: {
        clientId: "c",
        clientSecret: "s",
        hosts: { gitUrl: server.url, apiUrl: `${server.url}/api` },
      },
    });
    const box = createSecretBox(TEST_SECRETS_KEY);
    await t.state.putUser({ userId: "ann", displayName: "Ann", avatarUrl: "", github: sealGrant(box, "ann", GRANT) });
    await t.state.createRepl(record("rfetch", `${server.url}/ann/app.git`, {}), 100);
    await t.state.createRepl(record("rpush", `${server.url}/ann/app.git`, { allowPush: true }), 100);
    await t.state.createRepl(record("rgone", `${server.url}/ann/gone.git`, {}), 100);
    await t.state.createRepl(record("rplain", `${server.url}/ann/app.git`, { githubGrant: false }), 100);
    await t.state.createRepl({ ...record("rstopped", `${server.url}/ann/app.git`, {}), status: "stopped" }, 100);
  });
  after(async () => {
    await t?.close();
    await server?.close();
  });

  it("passes git's requests for the repl's repository with the owner's grant", async () => {
    const res = await get(refs("rfetch"), basic(token("rfetch", ["fetch"])));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-git-upload-pack-advertisement");
    assert.match(await res.text(), /# service=git-upload-pack/);
    const push = await get(refs("rpush", "git-receive-pack"), basic(token("rpush", ["fetch", "push"])));
    assert.equal(push.status, 200, await push.clone().text());
    assert.match(await push.text(), /# service=git-receive-pack/);
  });

  it("asks for credentials, and refuses bad ones with a status git understands", async () => {
    const none = await get(refs("rfetch"));
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Basic realm="devex"');
    const cases: Array<[string, number, RegExp]> = [
      [token("rfetch", ["fetch"], 60, Date.now() - 3_600_000), 401, /expired or is invalid/],
      [`${token("rfetch", ["fetch"]).slice(0, -4)}AAAA`, 401, /expired or is invalid/],
      [
        t.signer.mint({ aud: "runner", sub: "ann", repl: "rfetch", scope: ["files"] }, 600),
        401,
        /expired or is invalid/,
      ],
      [token("rpush", ["fetch", "push"]), 403, /another repl's repository/],
    ];
    for (const [bad, status, words] of cases) {
      const res = await get(refs("rfetch"), basic(bad));
      assert.equal(res.status, status, bad);
      assert.match(await res.text(), words);
    }
  });

  it("refuses a push without allow_push, and anything but git's smart-HTTP requests", async () => {
    for (const scope of [["fetch"], ["fetch", "push"]]) {
      // The repl's own record decides too: a token that says push does not make a repl pushable.
      const push = await get(refs("rfetch", "git-receive-pack"), basic(token("rfetch", scope)));
      assert.equal(push.status, 403);
      assert.match(await push.text(), /pushing from this repl is not allowed/);
    }
    const auth = basic(token("rfetch", ["fetch"]));
    for (const [path, method] of [
      ["/git/rfetch/objects/info/packs", "GET"],
      ["/git/rfetch/HEAD", "GET"],
      [refs("rfetch"), "POST"],
      ["/git/rfetch/git-upload-pack", "GET"],
      ["/git/rfetch/info/refs?service=git-upload-archive", "GET"],
    ]) {
      const res = await get(path, auth, method);
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    // A path that climbs into another repl's route is that route: this token does not open it.
    const climbed = await get("/git/rfetch/%2e%2e/rpush/info/refs?service=git-upload-pack", auth);
    assert.equal(climbed.status, 403);
  });

  it("refuses when the owner has no grant, or GitHub refuses it, without showing GitHub's answer", async () => {
    const gone = await get(refs("rgone"), basic(token("rgone", ["fetch"])));
    assert.equal(gone.status, 403);
    assert.match(await gone.text(), /GitHub refused the owner's grant for this repository \(401\)/);
    const plain = await get(refs("rplain"), basic(token("rplain", ["fetch"])));
    assert.equal(plain.status, 403, "a repl cloned without the grant gets none later");
    const stopped = await get(refs("rstopped"), basic(token("rstopped", ["fetch"])));
    assert.equal(stopped.status, 403, "a token taken out of a repl opens nothing once it stops");
    assert.match(await stopped.text(), /not running/);
    await t.state.putUser({ userId: "ann", displayName: "Ann", avatarUrl: "" });
    try {
      const res = await get(refs("rfetch"), basic(token("rfetch", ["fetch"])));
      assert.equal(res.status, 403);
      assert.match(await res.text(), /no GitHub grant any more \(sign in with GitHub again\)/);
    } finally {
      const box = createSecretBox(TEST_SECRETS_KEY);
      await t.state.putUser({ userId: "ann", displayName: "Ann", avatarUrl: "", github: sealGrant(box, "ann", GRANT) });
    }
  });

  it("GetGitCredential gives the repl's runner a token for its repository, with push only where allowed", async () => {
    const control = (replId: string) =>
      t.clients({
        bearer: t.signer.mint({ aud: "runner-control", sub: "run-1", repl: replId, scope: [] }, 600),
      }).control;
    for (const [replId, canPush] of [
      ["rfetch", false],
      ["rpush", true],
    ] as const) {
      const c = await control(replId).getGitCredential({ replId, runnerId: "run-1" });
      const receive = await get(refs(replId, "git-receive-pack"), basic(c.password));
      assert.equal(receive.status, canPush ? 200 : 403, replId);
      assert.equal((await get(refs(replId), basic(c.password))).status, 200);
      assert.ok(Number(c.expireTime?.seconds) * 1000 <= Date.now() + 15 * 60_000 + 1000, "minutes, not longer");
    }
    const err = await control("rplain")
      .getGitCredential({ replId: "rplain", runnerId: "run-1" })
      .catch((e) => ConnectError.from(e));
    assert.equal((err as ConnectError).code, Code.FailedPrecondition);
    const other = await control("rfetch")
      .getGitCredential({ replId: "rpush", runnerId: "run-1" })
      .catch((e) => ConnectError.from(e));
    assert.equal((other as ConnectError).code, Code.PermissionDenied);
  });
});
