/** The one contract every StateStore implementation passes (run by state.test.ts against each). */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { sleep } from "../../../lib/kit/sleep.js";
import type { ReplRecord, StateStore, TemplateRecord } from "../src/state/store.js";

const repl = (owner: string, over: Partial<ReplRecord> = {}): ReplRecord => ({
  replId: `r${randomUUID().slice(0, 8)}`,
  name: "demo",
  template: "node",
  owner,
  status: "stopped",
  createTime: Date.now(),
  updateTime: Date.now(),
  persistTime: 0,
  lastError: "",
  ...over,
});

export function stateStoreContract(open: () => Promise<StateStore>) {
  let store: StateStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  it("creates, reads and lists repls per user", async () => {
    const a = repl("alice");
    assert.equal(await store.createRepl(a, 5), true);
    assert.deepEqual(await store.getRepl(a.replId), a);
    assert.deepEqual(await store.listRepls("alice"), [a]);
    assert.deepEqual(await store.listRepls("bob"), []);
    assert.equal(await store.countRepls("alice"), 1);
    assert.equal(await store.getRepl("nope"), undefined);
  });

  it("enforces the quota atomically under concurrent creates", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => store.createRepl(repl("carol"), 3)));
    assert.equal(results.filter(Boolean).length, 3);
    assert.equal(await store.countRepls("carol"), 3);
  });

  it("transitions only from the allowed states, one winner per race", async () => {
    const a = repl("dave");
    await store.createRepl(a, 5);
    const wins = await Promise.all(
      Array.from({ length: 8 }, () => store.transitionRepl(a.replId, ["stopped"], { status: "starting" })),
    );
    assert.equal(wins.filter(Boolean).length, 1);
    assert.equal(await store.transitionRepl(a.replId, ["stopped"], { status: "running" }), undefined);
    const r = await store.transitionRepl(a.replId, ["starting"], { status: "running", lastError: "x", updateTime: 5 });
    assert.equal(r?.status, "running");
    assert.equal(r?.lastError, "x");
    assert.equal(r?.updateTime, 5);
    assert.equal(await store.transitionRepl("missing", ["stopped"], { status: "running" }), undefined);
  });

  it("deletes a repl with its set membership and active session", async () => {
    const a = repl("erin");
    await store.createRepl(a, 5);
    await store.setActiveSession({ replId: a.replId, runnerId: "run1", url: "http://x", startTime: 1 }, 10_000);
    await store.deleteRepl(a.replId, "erin");
    assert.equal(await store.getRepl(a.replId), undefined);
    assert.equal(await store.countRepls("erin"), 0);
    assert.equal(await store.getActiveSession(a.replId), undefined);
  });

  it("expires active sessions unless refreshed by their own runner", async () => {
    const s = { replId: "rx", runnerId: "run1", url: "http://x", startTime: 1 };
    await store.setActiveSession(s, 150);
    assert.deepEqual(await store.getActiveSession("rx"), s);
    assert.equal(await store.refreshActiveSession("rx", "other", 10_000), false);
    assert.equal(await store.refreshActiveSession("rx", "run1", 400), true);
    await sleep(200);
    assert.deepEqual(await store.getActiveSession("rx"), s);
    await sleep(300);
    assert.equal(await store.getActiveSession("rx"), undefined);
    assert.equal(await store.refreshActiveSession("rx", "run1", 400), false);
    await store.setActiveSession(s, 10_000);
    await store.deleteActiveSession("rx", "other");
    assert.ok(await store.getActiveSession("rx"));
    await store.deleteActiveSession("rx", "run1");
    assert.equal(await store.getActiveSession("rx"), undefined);
  });

  it("gives an expiring lock to one holder at a time", async () => {
    const tokens = await Promise.all(Array.from({ length: 6 }, () => store.acquireLock("l1", 150)));
    const held = tokens.filter(Boolean) as string[];
    assert.equal(held.length, 1);
    await store.releaseLock("l1", "not-the-holder");
    assert.equal(await store.acquireLock("l1", 150), undefined);
    await store.releaseLock("l1", held[0]);
    const again = await store.acquireLock("l1", 100);
    assert.ok(again);
    await sleep(150);
    assert.ok(await store.acquireLock("l1", 100), "an expired lock can be taken");
  });

  it("renews a lock only for its holder", async () => {
    const token = (await store.acquireLock("l2", 150))!;
    assert.equal(await store.renewLock("l2", "someone-else", 10_000), false);
    assert.equal(await store.renewLock("l2", token, 400), true);
    await sleep(250);
    assert.equal(await store.acquireLock("l2", 100), undefined, "renewed past its first TTL");
    await sleep(250);
    assert.equal(await store.renewLock("l2", token, 400), false, "an expired lock cannot be renewed");
  });

  it("stores API tokens by hash, lists per user, revokes and expires them", async () => {
    const t = {
      tokenId: "t1",
      userId: "frank",
      name: "ci",
      hash: "a".repeat(64),
      createTime: 1,
      expireTime: Date.now() + 60_000,
      lastUseTime: 0,
    };
    await store.putApiToken(t);
    assert.deepEqual(await store.getApiTokenByHash(t.hash), t);
    assert.deepEqual(await store.listApiTokens("frank"), [t]);
    await store.touchApiToken(t.hash, 42);
    assert.equal((await store.getApiTokenByHash(t.hash))?.lastUseTime, 42);
    assert.equal(await store.deleteApiToken("other", "t1"), false);
    assert.equal(await store.deleteApiToken("frank", "t1"), true);
    assert.equal(await store.getApiTokenByHash(t.hash), undefined);
    assert.deepEqual(await store.listApiTokens("frank"), []);
    await store.putApiToken({ ...t, tokenId: "t2", hash: "b".repeat(64), expireTime: Date.now() + 100 });
    await sleep(200);
    assert.equal(await store.getApiTokenByHash("b".repeat(64)), undefined);
    assert.deepEqual(await store.listApiTokens("frank"), []);
  });

  it("stores users and expiring web sessions", async () => {
    await store.putUser({ userId: "gina", displayName: "Gina", avatarUrl: "" });
    assert.deepEqual(await store.getUser("gina"), { userId: "gina", displayName: "Gina", avatarUrl: "" });
    // A GitHub grant is kept, and a later put without one removes it (a sign-in without the grant).
    await store.putUser({ userId: "gina", displayName: "Gina", avatarUrl: "", github: "v1.sealed" });
    assert.equal((await store.getUser("gina"))?.github, "v1.sealed");
    await store.putUser({ userId: "gina", displayName: "Gina G", avatarUrl: "" });
    assert.deepEqual(await store.getUser("gina"), { userId: "gina", displayName: "Gina G", avatarUrl: "" });
    const s = { userId: "gina", createTime: 1, expireTime: Date.now() + 150 };
    await store.putWebSession("h1", s);
    assert.deepEqual(await store.getWebSession("h1"), s);
    await store.deleteWebSession("h1");
    assert.equal(await store.getWebSession("h1"), undefined);
    await store.putWebSession("h2", s);
    await sleep(200);
    assert.equal(await store.getWebSession("h2"), undefined);
  });

  it("decides a device grant once and deletes it for one caller, and forgets it once it expires", async () => {
    const g = {
      userCode: "BCDFGHJK",
      deviceHash: "d".repeat(64),
      clientName: "devex CLI on test",
      createTime: Date.now(),
      expireTime: Date.now() + 60_000,
      status: "pending" as const,
    };
    await store.putDeviceGrant(g);
    assert.deepEqual(await store.getDeviceGrant("BCDFGHJK"), g);
    const decided = await Promise.all([
      store.decideDeviceGrant("BCDFGHJK", { status: "approved", userId: "ivy" }),
      store.decideDeviceGrant("BCDFGHJK", { status: "denied" }),
      store.decideDeviceGrant("BCDFGHJK", { status: "approved", userId: "mallory" }),
    ]);
    assert.deepEqual(decided, [true, false, false], "the first decision stands");
    assert.deepEqual(await store.getDeviceGrant("BCDFGHJK"), { ...g, status: "approved", userId: "ivy" });
    const deleted = await Promise.all([1, 2, 3].map(() => store.deleteDeviceGrant("BCDFGHJK")));
    assert.deepEqual(deleted.filter(Boolean), [true], "one caller deletes it");
    assert.equal(await store.getDeviceGrant("BCDFGHJK"), undefined);
    assert.equal(await store.decideDeviceGrant("NOSUCHCD", { status: "denied" }), false);
    await store.putDeviceGrant({ ...g, userCode: "LMNPQRST", expireTime: Date.now() + 100 });
    await sleep(200);
    assert.equal(await store.getDeviceGrant("LMNPQRST"), undefined);
    assert.equal(await store.decideDeviceGrant("LMNPQRST", { status: "denied" }), false);
  });

  it("gives a login code once, even to takers racing for it, and never after it expires", async () => {
    const code = { userId: "hana", expireTime: Date.now() + 60_000 };
    await store.putLoginCode("c1", code);
    const taken = await Promise.all(Array.from({ length: 8 }, () => store.takeLoginCode("c1")));
    assert.deepEqual(
      taken.filter((t) => t),
      [code],
      "exactly one taker gets it",
    );
    assert.equal(await store.takeLoginCode("c1"), undefined);
    assert.equal(await store.takeLoginCode("never-issued"), undefined);
    await store.putLoginCode("c2", { userId: "hana", expireTime: Date.now() + 100 });
    await sleep(200);
    assert.equal(await store.takeLoginCode("c2"), undefined);
  });

  it("hands a repl's pending setup to one of many racing claimers, and never again", async () => {
    const r = repl("ivan", { setup: { command: "npm install", status: "pending" } });
    await store.createRepl(r, 5);
    const claims = await Promise.all(Array.from({ length: 12 }, () => store.claimSetup(r.replId)));
    const won = claims.filter((c) => c);
    assert.equal(won.length, 1, "exactly one claimer gets the setup");
    assert.deepEqual(won[0]?.setup, { command: "npm install", status: "running" });
    assert.equal(await store.claimSetup(r.replId), undefined);
    const none = repl("ivan");
    await store.createRepl(none, 5);
    assert.equal(await store.claimSetup(none.replId), undefined, "a repl without a setup has none to claim");
    assert.equal(await store.claimSetup("missing"), undefined);
    // The end is an ordinary patch; the record reads back as written.
    const ended = { command: "npm install", status: "failed" as const, exitCode: 1 };
    await store.transitionRepl(r.replId, ["stopped"], { setup: ended });
    assert.deepEqual((await store.getRepl(r.replId))?.setup, ended);
    assert.equal(await store.claimSetup(r.replId), undefined, "an ended setup is not handed out again");
  });

  it("stores templates per owner: the operator's for all, a user's for them, a name for one owner, a quota", async () => {
    const template = (name: string, owner: string): TemplateRecord => ({
      name,
      title: `T ${name}`,
      description: "",
      language: "javascript",
      runCommand: "node index.js",
      setupCommand: "npm install",
      previewPort: 3000,
      environment: { GREETING: "hi" },
      egress: { mode: "deny_all", domains: [], cidrs: [] },
      owner,
      createTime: Date.now(),
    });
    assert.equal(await store.putTemplate(template("node", ""), 0), "stored");
    assert.equal(await store.putTemplate(template("ta", "jo"), 2), "stored");
    assert.equal(await store.putTemplate(template("tb", "jo"), 2), "stored");
    assert.equal(await store.putTemplate(template("tc", "jo"), 2), "over-quota");
    assert.equal(
      await store.putTemplate({ ...template("ta", "jo"), title: "again" }, 2),
      "stored",
      "a replace is no new one",
    );
    assert.equal(await store.putTemplate(template("ta", "kim"), 2), "taken");
    assert.equal(await store.putTemplate(template("node", "kim"), 2), "taken");
    assert.equal(await store.putTemplate(template("ta", ""), 0), "taken");
    assert.deepEqual(await store.getTemplate("ta"), {
      ...template("ta", "jo"),
      title: "again",
      createTime: (await store.getTemplate("ta"))!.createTime,
    });
    const names = async (owner: string) => (await store.listTemplates(owner)).map((t) => t.name).sort();
    assert.deepEqual(await names("jo"), ["node", "ta", "tb"]);
    assert.deepEqual(await names("kim"), ["node"]);
    assert.deepEqual(await names(""), ["node"]);
    assert.equal(await store.deleteTemplate("ta", "kim"), false, "only the owner deletes");
    assert.equal(await store.deleteTemplate("node", "jo"), false);
    assert.equal(await store.deleteTemplate("ta", "jo"), true);
    assert.equal(await store.deleteTemplate("ta", "jo"), false);
    assert.equal(await store.getTemplate("ta"), undefined);
    assert.equal(await store.putTemplate(template("tc", "jo"), 2), "stored", "a freed place can be used");
    const racing = await Promise.all(
      Array.from({ length: 6 }, (_, i) => store.putTemplate(template(`tr${i}`, "lee"), 3)),
    );
    assert.equal(racing.filter((o) => o === "stored").length, 3, "the quota holds under racing saves");
    assert.equal(await store.deleteTemplate("node", ""), true);
    assert.deepEqual(await names("kim"), []);
  });

  it("keeps a deleted repl's tombstone until it expires", async () => {
    const t = { replId: "rgone", owner: "uma", reason: "clone failed: not found" };
    await store.putReplTombstone(t, 150);
    assert.deepEqual(await store.getReplTombstone("rgone"), t);
    assert.equal(await store.getReplTombstone("rother"), undefined);
    await sleep(250);
    assert.equal(await store.getReplTombstone("rgone"), undefined);
  });
}
