/** The audit log in both state stores: the contract, and the embedded log's file across restarts. */
import assert from "node:assert/strict";
import { appendFile, chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { createEmbeddedStore } from "../src/state/embedded.js";
import { createRedisStore } from "../src/state/redis.js";
import { auditRecord, auditStoreContract } from "./audit-store-contract.js";

const ample = { maxAgeMs: 3_600_000, maxEvents: 100_000, maxUserEvents: 10_000 };

describe("audit log: embedded store", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-audit-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  let n = 0;
  auditStoreContract(() => createEmbeddedStore(join(dir, String(n++))));

  it("keeps its events across a restart, skipping a torn last line", async () => {
    const d = join(dir, "restart");
    const a = await createEmbeddedStore(d);
    await a.appendAuditEvents([auditRecord("ann", 1), auditRecord("ann", 2)], ample);
    await a.close();
    await appendFile(join(d, "audit.jsonl"), '{"eventId":"9-0","userId":"ann","de');
    const b = await createEmbeddedStore(d);
    assert.deepEqual(
      (await b.listAuditEvents({ userId: "ann", limit: 10 })).map((e) => e.details.n),
      ["2", "1"],
    );
    await b.appendAuditEvents([auditRecord("ann", 3)], ample);
    await b.close();
    const lines = (await readFile(join(d, "audit.jsonl"), "utf8")).trim().split("\n");
    assert.equal(lines.length, 3, "rewritten without the torn line at open, then appended to");
    const c = await createEmbeddedStore(d);
    assert.deepEqual(
      (await c.listAuditEvents({ userId: "ann", limit: 10 })).map((e) => e.details.n),
      ["3", "2", "1"],
    );
    await c.close();
  });

  it("appends to its file instead of rewriting it, and compacts it as retention drops events", async () => {
    const d = join(dir, "compact");
    const s = await createEmbeddedStore(d);
    const tight = { ...ample, maxUserEvents: 100, maxEvents: 100 };
    for (let i = 0; i < 3000; i += 100)
      await s.appendAuditEvents(
        Array.from({ length: 100 }, (_, j) => auditRecord("ann", i + j)),
        tight,
      );
    await s.close();
    const lines = (await readFile(join(d, "audit.jsonl"), "utf8")).trim().split("\n").length;
    assert.ok(lines <= 100 * 1.5 + 1100, `${lines} lines for at most 110 events kept`);
    assert.equal((await stat(join(d, "audit.jsonl"))).mode & 0o777, 0o600, "private after compaction too");
  });

  it("makes a log file an earlier version left readable private again at open", async () => {
    const d = join(dir, "mode");
    const a = await createEmbeddedStore(d);
    await a.appendAuditEvents([auditRecord("ann", 1)], ample);
    await a.close();
    await chmod(join(d, "audit.jsonl"), 0o644);
    const b = await createEmbeddedStore(d);
    assert.equal((await stat(join(d, "audit.jsonl"))).mode & 0o777, 0o600);
    await b.close();
  });
});

describe("audit log: redis store", () => {
  let redis: TestRedis;
  before(async function () {
    const program = requireProgram(this, "redis-server");
    redis = await startRedis(program);
  });
  after(() => redis?.dispose());
  auditStoreContract(async () => {
    const store = await createRedisStore({ url: redis.url });
    return store;
  });
});
