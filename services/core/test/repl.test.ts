/**
 * The repl lifecycle against real Redis (redis-server) and real S3 (s3rver), through real sockets:
 * storage layout, bad input, quota, outages with rollback, concurrency (also across two core
 * instances on one Redis), stop/persist failure, WatchRepl and RunnerControlService.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { createS3BlobStore } from "../../../lib/blob/s3.js";
import { type BlobStore, listAll } from "../../../lib/blob/store.js";
import { createTokenVerifier } from "../../../lib/kit/tokens.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { startS3, type TestS3 } from "../../../lib/testing/s3.js";
import { mintControlToken } from "../src/runnercontrol/control-token.js";
import { createRedisStore } from "../src/state/redis.js";
import type { StateStore } from "../src/state/store.js";
import { type Clients, startTestCore, type TestCore } from "./harness.js";

const code = (c: Code, match?: RegExp) => (e: unknown) => {
  const err = ConnectError.from(e);
  assert.equal(Code[err.code], Code[c], err.message);
  if (match) assert.match(err.message, match);
  return true;
};

async function eventually(check: () => Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("repl lifecycle on Redis and S3", function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let s3: TestS3;
  let raw: Redis;
  let state: StateStore;
  let blobs: BlobStore;
  let t: TestCore;
  let alice: Clients;
  let user = 0;
  /** A fresh user per test keeps quota effects apart. */
  let me: string;
  let c: Clients;

  before(async function () {
    const program = requireProgram(this, "redis-server");
    [redis, s3] = await Promise.all([startRedis(program), startS3()]);
    raw = new Redis(redis.url, { lazyConnect: true });
    // The tests stop Redis under it on purpose: a reconnect error is expected, not an unhandled event.
    raw.on("error", () => {});
    await raw.connect();
    state = await createRedisStore({ url: redis.url, commandTimeoutMs: 2000 });
    blobs = createS3BlobStore(s3.storeOptions);
    t = await startTestCore({ state, blobs, quota: 3, lockWaitMs: 5000 });
    alice = t.clients({ bearer: await t.token("alice") });
  });
  after(async () => {
    await t?.close();
    raw?.disconnect();
    await state?.close();
    await blobs?.close();
    await redis?.dispose();
    await s3?.dispose();
  });
  beforeEach(async () => {
    me = `user${++user}`;
    c = t.clients({ bearer: await t.token(me) });
    t.driver.startDelayMs = 0;
    t.driver.stopDelayMs = 0;
    t.driver.failPersist = false;
    t.driver.failStart = false;
  });

  it("lists the templates synced from templates/", async () => {
    const { templates } = await c.repl.listTemplates({});
    assert.deepEqual(
      templates.map((x) => [x.name, x.runCommand]),
      [
        ["node", "node index.js"],
        ["python", "python3 main.py"],
        ["vite", "npm run dev"],
      ],
    );
    const stored = await readStoredWorkspace(blobs, "templates/node/");
    assert.deepEqual([...stored.keys()].sort(), ["index.js", "package.json"], "stored without template.json");
  });

  it("CreateRepl writes replMeta:{id}, userRepls:{user} and the workspace under repl/<user>/<id>/", async () => {
    const { repl } = await c.repl.createRepl({ name: "My app", template: "node" });
    assert.ok(repl);
    assert.match(repl.replId, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    assert.equal(repl.status, ReplStatus.STOPPED);
    assert.equal(repl.owner, me);
    const meta = await raw.hgetall(`replMeta:${repl.replId}`);
    assert.equal(meta.owner, me);
    assert.equal(meta.name, "My app");
    assert.equal(meta.template, "node");
    assert.equal(meta.status, "stopped");
    assert.deepEqual(await raw.smembers(`userRepls:${me}`), [repl.replId]);
    const stored = await readStoredWorkspace(blobs, `repl/${me}/${repl.replId}/`);
    assert.deepEqual([...stored.keys()].sort(), ["index.js", "package.json"]);
    assert.match(stored.get("index.js")!.toString(), /Hello from Devex \(node\)/);
    const got = await c.repl.getRepl({ replId: repl.replId });
    assert.equal(got.repl?.name, "My app");
  });

  it("SaveTemplate on S3 and Redis: a private template whose repls get the same files", async () => {
    const { repl } = await c.repl.createRepl({ name: "source", template: "node" });
    const { template } = await c.repl.saveTemplate({ replId: repl!.replId, title: "Mine" });
    const stored = JSON.parse((await raw.get(`template:${template!.name}`)) ?? "{}");
    assert.equal(stored.owner, me);
    assert.deepEqual(await raw.smembers(`templates:${me}`), [template!.name]);
    const { repl: copy } = await c.repl.createRepl({ name: "copy", template: template!.name });
    const files = await readStoredWorkspace(blobs, `repl/${me}/${copy!.replId}/`);
    assert.deepEqual([...files.keys()].sort(), ["index.js", "package.json"]);
    await c.repl.deleteTemplate({ name: template!.name });
    assert.deepEqual(await listAll(blobs, `templates/${template!.name}/`), []);
    assert.equal(await raw.exists(`template:${template!.name}`), 0);
  });

  it("refuses bad input with InvalidArgument and the reason", async () => {
    const bad: Array<[string, () => Promise<unknown>, RegExp]> = [
      ["empty name", () => c.repl.createRepl({ name: "", template: "node" }), /name/],
      ["name with slash", () => c.repl.createRepl({ name: "../etc", template: "node" }), /name/],
      ["oversize name", () => c.repl.createRepl({ name: "x".repeat(10_000), template: "node" }), /name/],
      ["bad template", () => c.repl.createRepl({ name: "a", template: "Node!" }), /template/],
      ["unknown template", () => c.repl.createRepl({ name: "a", template: "ruby" }), /unknown template "ruby".*node/],
      ["bad id", () => c.repl.getRepl({ replId: "UPPER_case" }), /repl_id/],
      ["oversize id", () => c.repl.startRepl({ replId: "a".repeat(64) }), /repl_id/],
      ["page size", () => c.repl.listRepls({ pageSize: 501 }), /page_size/],
      ["page token", () => c.repl.listRepls({ pageToken: "garbage" }), /page_token/],
      ["token name", () => c.auth.createApiToken({ name: "" }), /name/],
      ["token ttl", () => c.auth.createApiToken({ name: "x", ttl: { seconds: 5n } }), /ttl/],
    ];
    for (const [what, call, reason] of bad) {
      await assert.rejects(call(), code(Code.InvalidArgument, reason), what);
    }
    // A request body beyond the 1 MiB read limit is refused before decoding (Connect: resource_exhausted).
    // Sent with fetch: after the server answers early, connect-node's HTTP/1.1 client transport hangs on
    // its next call (a plain node:http client carries on fine), so a shared client must not send it.
    const res = await fetch(`${t.core.url}/devex.core.v1.ReplService/CreateRepl`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await t.token(me)}` },
      body: JSON.stringify({ name: "a", template: "x".repeat(2 * 1024 * 1024) }),
    });
    assert.equal(((await res.json()) as { code: string }).code, "resource_exhausted");
    assert.equal(await raw.scard(`userRepls:${me}`), 0);
  });

  it("enforces the per-user quota with ResourceExhausted naming it", async () => {
    for (let i = 0; i < 3; i++) await c.repl.createRepl({ name: `r${i}`, template: "python" });
    await assert.rejects(
      c.repl.createRepl({ name: "one too many", template: "node" }),
      code(Code.ResourceExhausted, /quota.*3/),
    );
    assert.equal(await raw.scard(`userRepls:${me}`), 3);
    // Concurrent creates cannot overshoot either.
    const other = t.clients({ bearer: await t.token(`${me}b`) });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => other.repl.createRepl({ name: `c${i}`, template: "node" })),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    assert.equal((await listAll(blobs, `repl/${me}b/`)).length, 9, "refused creates left no files");
  });

  it("pages ListRepls newest first", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await c.repl.createRepl({ name: `p${i}`, template: "node" })).repl!.replId);
      await new Promise((r) => setTimeout(r, 5));
    }
    const first = await c.repl.listRepls({ pageSize: 2 });
    const second = await c.repl.listRepls({ pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(
      [...first.repls, ...second.repls].map((r) => r.replId),
      ids.reverse(),
    );
    assert.equal(second.nextPageToken, "");
    assert.deepEqual(
      (await alice.repl.listRepls({})).repls.filter((r) => r.owner !== "alice"),
      [],
    );
  });

  it("with Redis stopped, CreateRepl is Unavailable and leaves neither record nor files", async () => {
    await redis.stop();
    try {
      await assert.rejects(c.repl.createRepl({ name: "x", template: "node" }), code(Code.Unavailable, /unavailable/));
      await assert.rejects(c.repl.listRepls({}), (e) => {
        const err = ConnectError.from(e);
        // The token lookup needs Redis too; no backend message leaks either way.
        assert.equal(err.code, Code.Unavailable);
        assert.doesNotMatch(err.message, /ECONNREFUSED|ioredis|Stream/);
        return true;
      });
    } finally {
      await redis.start();
    }
    await eventually(
      () =>
        c.repl.listRepls({}).then(
          () => true,
          () => false,
        ),
      10_000,
    );
    assert.equal(await raw.scard(`userRepls:${me}`), 0);
    assert.deepEqual(await listAll(blobs, `repl/${me}/`), []);
  });

  it("with Redis going down between copy and record, the copied files are removed", async () => {
    // Redis is stopped for real while the template is being copied: authentication has passed, the
    // files are in S3, and the record cannot be written. (The wrapper only adds the timing.)
    // The copy's last write is the new workspace's index: Redis goes down right after it.
    const realPut = blobs.put;
    blobs.put = async (key, body, signal) => {
      await realPut(key, body, signal);
      if (key.startsWith(`repl/${me}/`) && key.endsWith(".devex-sync/index.json")) {
        assert.equal((await listAll(blobs, `repl/${me}/`)).length, 3, "the files were copied");
        await redis.stop();
      }
    };
    try {
      await assert.rejects(c.repl.createRepl({ name: "x", template: "node" }), code(Code.Unavailable, /state store/));
    } finally {
      blobs.put = realPut;
      await redis.start();
    }
    // Wait until core's own Redis client has reconnected, not just ours.
    await eventually(
      () =>
        state.countRepls(me).then(
          () => true,
          () => false,
        ),
      10_000,
    );
    assert.equal(await raw.scard(`userRepls:${me}`), 0);
    assert.deepEqual(await raw.keys("replMeta:*").then((k) => k.filter((x) => x.includes(me))), []);
    assert.deepEqual(await listAll(blobs, `repl/${me}/`), []);
  });

  it("with S3 stopped, CreateRepl is Unavailable and records nothing", async () => {
    await s3.stop();
    try {
      await assert.rejects(c.repl.createRepl({ name: "x", template: "node" }), code(Code.Unavailable, /blob store/));
    } finally {
      await s3.start();
    }
    assert.equal(await raw.scard(`userRepls:${me}`), 0);
    assert.deepEqual((await c.repl.listRepls({})).repls, []);
    assert.deepEqual(await listAll(blobs, `repl/${me}/`), []);
  });

  it("starts, stops and deletes; StartRepl hands out a scoped runner token", async () => {
    const { repl } = await c.repl.createRepl({ name: "life", template: "node" });
    const replId = repl!.replId;
    const started = await c.repl.startRepl({ replId });
    assert.equal(started.repl?.status, ReplStatus.RUNNING);
    const access = started.runner!;
    assert.match(access.url, /^http:\/\/runner\.test\/run-/);
    assert.equal(access.websocketPath, "/ws/terminals/");
    assert.equal(access.previewUrlTemplate, `${access.url}/preview/{port}/`);
    const claims = createTokenVerifier(t.signer.publicKeyPem).verify(access.token, { aud: "runner", repl: replId });
    assert.equal(claims.sub, me);
    assert.deepEqual(claims.scope, ["files", "terminals", "exec", "preview"]);
    assert.ok(claims.exp - claims.iat <= 15 * 60);
    assert.ok(await raw.exists(`activeSession:${replId}`));
    assert.ok((await raw.pttl(`activeSession:${replId}`)) > 0);

    const again = await c.repl.startRepl({ replId });
    assert.equal(again.runner?.url, access.url, "idempotent: same runner");
    assert.equal(t.driver.starts.filter((s) => s.replId === replId).length, 1);

    const stopped = await c.repl.stopRepl({ replId });
    assert.equal(stopped.repl?.status, ReplStatus.STOPPED);
    assert.ok(stopped.repl?.persistTime);
    assert.equal(await raw.exists(`activeSession:${replId}`), 0);
    assert.equal(t.driver.runners.size, [...t.driver.runners.values()].filter((r) => r.replId !== replId).length);
    assert.equal((await c.repl.stopRepl({ replId })).repl?.status, ReplStatus.STOPPED, "stop is idempotent");

    await c.repl.startRepl({ replId });
    await c.repl.deleteRepl({ replId });
    assert.equal(await raw.exists(`replMeta:${replId}`), 0);
    assert.equal(await raw.sismember(`userRepls:${me}`, replId), 0);
    assert.equal(await raw.exists(`activeSession:${replId}`), 0);
    assert.deepEqual(await listAll(blobs, `repl/${me}/${replId}/`), []);
    assert.ok(![...t.driver.runners.values()].some((r) => r.replId === replId), "delete stopped the runner");
    await assert.rejects(c.repl.getRepl({ replId }), code(Code.NotFound));
    await assert.rejects(c.repl.deleteRepl({ replId }), code(Code.NotFound));
  });

  it("two concurrent StartRepl calls start exactly one runner", async () => {
    const { repl } = await c.repl.createRepl({ name: "race", template: "node" });
    t.driver.startDelayMs = 300;
    const results = await Promise.all(Array.from({ length: 5 }, () => c.repl.startRepl({ replId: repl!.replId })));
    assert.equal(t.driver.starts.filter((s) => s.replId === repl!.replId).length, 1);
    assert.equal(new Set(results.map((r) => r.runner?.url)).size, 1);
  });

  it("two core instances on one Redis start exactly one runner", async () => {
    // Both instances share the runtime, as two replicas of core share one Kubernetes cluster.
    const second = await startTestCore({ state: await createRedisStore({ url: redis.url }), blobs, driver: t.driver });
    try {
      const secret = await second.token(me);
      const c2 = second.clients({ bearer: secret }, true); // the second one over gRPC (h2c)
      const { repl } = await c.repl.createRepl({ name: "two cores", template: "node" });
      t.driver.startDelayMs = 300;
      const results = await Promise.all([
        c.repl.startRepl({ replId: repl!.replId }),
        c2.repl.startRepl({ replId: repl!.replId }),
        c.repl.startRepl({ replId: repl!.replId }),
        c2.repl.startRepl({ replId: repl!.replId }),
      ]);
      assert.equal(t.driver.starts.filter((s) => s.replId === repl!.replId).length, 1);
      assert.equal(new Set(results.map((r) => r.runner?.url)).size, 1);
    } finally {
      await second.close();
      await second.state.close();
    }
  });

  it("a caller that hangs up does not abort the start others wait for", async () => {
    const { repl } = await c.repl.createRepl({ name: "hangup", template: "node" });
    const replId = repl!.replId;
    t.driver.startDelayMs = 400;
    // The first caller takes the lock and starts the runner, then gives up after 100 ms.
    const hangingUp = assert.rejects(c.repl.startRepl({ replId }, { timeoutMs: 100 }));
    await eventually(async () => (await raw.hget(`replMeta:${replId}`, "status")) === "starting");
    const waiting = c.repl.startRepl({ replId });
    await hangingUp;
    const { runner } = await waiting;
    assert.ok(runner?.url);
    assert.equal(t.driver.starts.filter((s) => s.replId === replId).length, 1);
    assert.equal((await c.repl.getRepl({ replId })).repl?.status, ReplStatus.RUNNING);
  });

  it("StartRepl during StopRepl fails with FailedPrecondition", async () => {
    const { repl } = await c.repl.createRepl({ name: "busy", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    t.driver.stopDelayMs = 500;
    const stopping = c.repl.stopRepl({ replId });
    await eventually(async () => (await raw.hget(`replMeta:${replId}`, "status")) === "stopping");
    await assert.rejects(c.repl.startRepl({ replId }), code(Code.FailedPrecondition, /stopping/));
    assert.equal((await stopping).repl?.status, ReplStatus.STOPPED);
    t.driver.stopDelayMs = 0;
    assert.equal((await c.repl.startRepl({ replId })).repl?.status, ReplStatus.RUNNING, "startable once stopped");
  });

  it("keeps the runner when persisting fails, and reports Unavailable", async () => {
    const { repl } = await c.repl.createRepl({ name: "keep", template: "node" });
    const replId = repl!.replId;
    const { runner } = await c.repl.startRepl({ replId });
    t.driver.failPersist = true;
    await assert.rejects(c.repl.stopRepl({ replId }), code(Code.Unavailable, /runner keeps running/));
    const now = await c.repl.getRepl({ replId });
    assert.equal(now.repl?.status, ReplStatus.RUNNING);
    assert.match(now.repl!.lastError, /persist/);
    assert.ok([...t.driver.runners.values()].some((r) => r.url === `${runner!.url}/`));
    t.driver.failPersist = false;
    assert.equal((await c.repl.stopRepl({ replId })).repl?.status, ReplStatus.STOPPED);
  });

  it("a failed start rolls back to stopped with the reason", async () => {
    const { repl } = await c.repl.createRepl({ name: "nostart", template: "node" });
    t.driver.failStart = true;
    await assert.rejects(c.repl.startRepl({ replId: repl!.replId }), code(Code.Unavailable, /no capacity/));
    const now = (await c.repl.getRepl({ replId: repl!.replId })).repl!;
    assert.equal(now.status, ReplStatus.STOPPED);
    assert.match(now.lastError, /start failed: test driver: no capacity/);
    assert.equal(await raw.exists(`activeSession:${repl!.replId}`), 0);
  });

  it("WatchRepl streams the state, progress and changes, and ends on delete", async () => {
    const { repl } = await c.repl.createRepl({ name: "watched", template: "node" });
    const replId = repl!.replId;
    const seen: string[] = [];
    const watching = (async () => {
      for await (const u of c.repl.watchRepl({ replId })) {
        seen.push(u.progress ? `${ReplStatus[u.repl!.status]}:${u.progress.phase}` : ReplStatus[u.repl!.status]);
      }
    })();
    await eventually(async () => seen.length > 0);
    await c.repl.startRepl({ replId });
    await c.repl.stopRepl({ replId });
    await c.repl.deleteRepl({ replId });
    await watching;
    assert.deepEqual(
      seen.filter((s) => !s.includes(":")),
      ["STOPPED", "STARTING", "RUNNING", "STOPPING", "STOPPED", "DELETING"],
    );
    for (const s of ["STARTING:restore", "STOPPING:persist"]) assert.ok(seen.includes(s), `${s} in ${seen.join(",")}`);
  });

  it("RunnerControlService: heartbeats keep the session, ReportIdle stops the repl", async () => {
    const { repl } = await c.repl.createRepl({ name: "idle", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    const started = t.driver.starts.at(-1)!;
    assert.equal(started.coreUrl, t.core.publicUrl);
    const runner = t.clients({ bearer: started.controlToken });
    await raw.pexpire(`activeSession:${replId}`, 5000);
    const hb = await runner.control.heartbeat({ replId, runnerId: started.runnerId });
    assert.equal(hb.unknownRunner, false);
    assert.ok((await raw.pttl(`activeSession:${replId}`)) > 5000, "heartbeat refreshed the TTL");
    const idle = await runner.control.reportIdle({ replId, runnerId: started.runnerId, idleFor: { seconds: 300n } });
    assert.equal(idle.stopping, true);
    await eventually(async () => (await c.repl.getRepl({ replId })).repl?.status === ReplStatus.STOPPED);
    assert.equal(t.driver.stops.at(-1)?.reason, "repl stopped after 5 minutes idle");
    const late = await runner.control.heartbeat({ replId, runnerId: started.runnerId });
    assert.equal(late.unknownRunner, true, "a stopped runner is told to exit");
  });

  it("RunnerControlService: Heartbeat renews a control credential past half its life, and only then", async () => {
    const { repl } = await c.repl.createRepl({ name: "long", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    const { runnerId, controlToken } = t.driver.starts.at(-1)!;
    const verifier = createTokenVerifier(t.signer.publicKeyPem);
    const fresh = await t.clients({ bearer: controlToken }).control.heartbeat({ replId, runnerId });
    assert.equal(fresh.controlToken, "", "a credential in the first half of its life is kept");
    // The credential of a repl that has run for four of its credential's seven days.
    const day = 24 * 3600_000;
    const aged = mintControlToken(t.signer, runnerId, replId, Date.now() - 4 * day);
    const renewed = (await t.clients({ bearer: aged }).control.heartbeat({ replId, runnerId })).controlToken;
    assert.ok(renewed);
    const claims = verifier.verify(renewed, { aud: "runner-control" });
    assert.deepEqual([claims.sub, claims.repl, claims.scope], [runnerId, replId, []]);
    assert.ok(claims.exp * 1000 > Date.now() + 6 * day, "a whole lifetime again");
    const next = await t.clients({ bearer: renewed }).control.heartbeat({ replId, runnerId });
    assert.equal(next.unknownRunner, false);
    assert.equal(next.controlToken, "");
    // A runner core no longer knows gets no new credential.
    await c.repl.stopRepl({ replId });
    const stopped = await t.clients({ bearer: aged }).control.heartbeat({ replId, runnerId });
    assert.deepEqual([stopped.unknownRunner, stopped.controlToken], [true, ""]);
  });

  it("StartRepl finishes what a crashed core left half done", async () => {
    const { repl } = await c.repl.createRepl({ name: "crash", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    const first = t.driver.starts.at(-1)!.runnerId;
    // A core died in the middle of a stop: status "stopping", lock expired, runner still there.
    await raw.hset(`replMeta:${replId}`, "status", "stopping");
    const { repl: after } = await c.repl.startRepl({ replId });
    assert.equal(after?.status, ReplStatus.RUNNING);
    assert.ok(
      t.driver.stops.some((s) => s.runnerId === first),
      "the interrupted stop was finished (persisted)",
    );
    assert.notEqual(t.driver.starts.at(-1)!.runnerId, first);
    // A core died in the middle of a start.
    await c.repl.stopRepl({ replId });
    await raw.hset(`replMeta:${replId}`, "status", "starting");
    assert.equal((await c.repl.startRepl({ replId })).repl?.status, ReplStatus.RUNNING);
  });

  it("a running repl whose session expired reads as stopped and starts afresh", async () => {
    const { repl } = await c.repl.createRepl({ name: "lost", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    await raw.del(`activeSession:${replId}`);
    const now = (await c.repl.getRepl({ replId })).repl!;
    assert.equal(now.status, ReplStatus.STOPPED);
    assert.match(now.lastError, /heartbeats/);
    await c.repl.startRepl({ replId });
    assert.equal(t.driver.starts.filter((s) => s.replId === replId).length, 2);
  });
});
