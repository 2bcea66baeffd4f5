import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isKind } from "../../../lib/kit/errors.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { createEmbeddedStore } from "../src/state/embedded.js";
import { createRedisStore } from "../src/state/redis.js";
import { stateStoreContract } from "./state-contract.js";

describe("state store: embedded", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-state-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  let n = 0;
  stateStoreContract(() => createEmbeddedStore(join(dir, String(n++))));

  it("keeps everything across a restart", async () => {
    const d = join(dir, "restart");
    const a = await createEmbeddedStore(d);
    const r = {
      replId: "r1",
      name: "x",
      template: "node",
      owner: "u",
      status: "stopped" as const,
      createTime: 1,
      updateTime: 1,
      persistTime: 0,
      lastError: "",
    };
    await a.createRepl(r, 2);
    await a.putUser({ userId: "u", displayName: "U", avatarUrl: "" });
    await a.close();
    const b = await createEmbeddedStore(d);
    assert.deepEqual(await b.getRepl("r1"), r);
    assert.equal((await b.getUser("u"))?.displayName, "U");
    await b.close();
  });
});

describe("state store: redis", () => {
  let redis: TestRedis;
  before(async function () {
    const program = requireProgram(this, "redis-server");
    redis = await startRedis(program);
  });
  after(() => redis?.dispose());
  stateStoreContract(() => createRedisStore({ url: redis.url }));

  it("fails with Unavailable while Redis is down, and recovers", async () => {
    const store = await createRedisStore({ url: redis.url, commandTimeoutMs: 1000 });
    await redis.stop();
    try {
      await assert.rejects(store.getRepl("x"), (e) => isKind(e, "unavailable") && !/ECONNREFUSED/.test(e.message));
    } finally {
      await redis.start();
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        assert.equal(await store.getRepl("x"), undefined);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await store.close();
  });
});
