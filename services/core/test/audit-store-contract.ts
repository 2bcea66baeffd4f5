/** The audit log's contract (StateStore's AuditStore part), run by audit-store.test.ts against each store. */
import assert from "node:assert/strict";
import { sleep } from "../../../lib/kit/sleep.js";
import type { AuditRecord, AuditRetention, StateStore } from "../src/state/store.js";

const ample: AuditRetention = { maxAgeMs: 3_600_000, maxEvents: 100_000, maxUserEvents: 10_000 };

export const auditRecord = (userId: string, n: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  time: Date.now(),
  userId,
  tokenId: "tok1",
  clientAddress: "127.0.0.1",
  rpc: "devex.core.v1.ReplService/CreateRepl",
  replId: `r${n}`,
  outcome: "ok",
  message: "",
  details: { n: String(n) },
  ...over,
});

const idMs = (id: string) => Number(id.split("-")[0]);

export function auditStoreContract(open: () => Promise<StateStore>) {
  let store: StateStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  it("lists a user's events newest first, with increasing ids, as appended", async () => {
    await store.appendAuditEvents([auditRecord("ann", 1), auditRecord("ann", 2)], ample);
    await store.appendAuditEvents([auditRecord("ann", 3, { outcome: "not_found", message: "no repl r3" })], ample);
    const events = await store.listAuditEvents({ userId: "ann", limit: 10 });
    assert.deepEqual(
      events.map((e) => e.details.n),
      ["3", "2", "1"],
    );
    const [third, second, first] = events;
    assert.ok(idMs(first.eventId) <= idMs(third.eventId));
    assert.notEqual(first.eventId, second.eventId);
    const { eventId: _, ...rest } = third;
    assert.deepEqual(rest, {
      ...auditRecord("ann", 3, { outcome: "not_found", message: "no repl r3" }),
      time: third.time,
    });
  });

  it("pages with the last id seen, whatever is appended meanwhile", async () => {
    for (let i = 1; i <= 7; i++) await store.appendAuditEvents([auditRecord("pat", i)], ample);
    const first = await store.listAuditEvents({ userId: "pat", limit: 3 });
    assert.deepEqual(
      first.map((e) => e.details.n),
      ["7", "6", "5"],
    );
    await store.appendAuditEvents([auditRecord("pat", 8)], ample);
    const second = await store.listAuditEvents({ userId: "pat", limit: 3, before: first[2].eventId });
    assert.deepEqual(
      second.map((e) => e.details.n),
      ["4", "3", "2"],
    );
    const last = await store.listAuditEvents({ userId: "pat", limit: 3, before: second[2].eventId });
    assert.deepEqual(
      last.map((e) => e.details.n),
      ["1"],
    );
  });

  it("filters by when events were recorded: [start, end)", async () => {
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await store.appendAuditEvents([auditRecord("tim", i)], ample);
      ids.push((await store.listAuditEvents({ userId: "tim", limit: 1 }))[0].eventId);
      await sleep(15);
    }
    const [a, b, c] = ids.map(idMs);
    const only2 = await store.listAuditEvents({ userId: "tim", startTime: b, endTime: c, limit: 10 });
    assert.deepEqual(
      only2.map((e) => e.details.n),
      ["2"],
    );
    const from2 = await store.listAuditEvents({ userId: "tim", startTime: a + 1, limit: 10 });
    assert.deepEqual(
      from2.map((e) => e.details.n),
      ["3", "2"],
    );
    const upTo2 = await store.listAuditEvents({ userId: "tim", endTime: c, limit: 1, before: ids[1] });
    assert.deepEqual(
      upTo2.map((e) => e.details.n),
      ["1"],
    );
  });

  it("keeps users apart; everyone's events are listed without a user", async () => {
    await store.appendAuditEvents([auditRecord("uma", 1), auditRecord("vic", 2), auditRecord("uma", 3)], ample);
    assert.deepEqual(
      (await store.listAuditEvents({ userId: "uma", limit: 10 })).map((e) => e.details.n),
      ["3", "1"],
    );
    assert.deepEqual(
      (await store.listAuditEvents({ userId: "vic", limit: 10 })).map((e) => e.details.n),
      ["2"],
    );
    assert.deepEqual(await store.listAuditEvents({ userId: "nobody", limit: 10 }), []);
    const all = (await store.listAuditEvents({ limit: 100 })).filter((e) => ["uma", "vic"].includes(e.userId));
    assert.deepEqual(
      all.map((e) => e.details.n),
      ["3", "2", "1"],
    );
  });

  it("trims each user's and the whole log's oldest events past their caps", async () => {
    const tight = { ...ample, maxUserEvents: 100, maxEvents: 150 };
    for (let i = 0; i < 300; i += 50)
      await store.appendAuditEvents(
        Array.from({ length: 50 }, (_, j) => auditRecord("cap", i + j)),
        tight,
      );
    const kept = await store.listAuditEvents({ userId: "cap", limit: 1000 });
    // The embedded store trims past 10% over a cap (so trimming is occasional), Redis exactly.
    assert.ok(kept.length >= 100 && kept.length <= 110, `kept ${kept.length}`);
    assert.equal(kept[0].details.n, "299", "the newest stay");
    for (let i = 0; i < 200; i += 50)
      await store.appendAuditEvents(
        Array.from({ length: 50 }, (_, j) => auditRecord(`other${j % 5}`, i + j)),
        tight,
      );
    const all = await store.listAuditEvents({ limit: 10_000 });
    assert.ok(all.length >= 150 && all.length <= 165, `kept ${all.length} in all`);
  });

  it("drops events older than the retention", async () => {
    // An age limit also expires the keys that long after the last append (Redis), so the list below
    // must come within it: a second, not the tens of ms a loaded machine can stall for.
    await store.appendAuditEvents([auditRecord("old", 1)], ample);
    await sleep(1100);
    await store.appendAuditEvents([auditRecord("old", 2)], { ...ample, maxAgeMs: 1000 });
    assert.deepEqual(
      (await store.listAuditEvents({ userId: "old", limit: 10 })).map((e) => e.details.n),
      ["2"],
    );
  });

  it("an age limit of 0 means none: events stay whatever their age, and the counts still bound them", async () => {
    // An expiry set under an earlier age limit (50 ms) does not outlive the change to none.
    await store.appendAuditEvents([auditRecord("ever", 1)], { ...ample, maxAgeMs: 50 });
    await store.appendAuditEvents([auditRecord("ever", 2)], { ...ample, maxAgeMs: 0 });
    await sleep(100);
    await store.appendAuditEvents([auditRecord("ever", 3)], { ...ample, maxAgeMs: 0 });
    assert.deepEqual(
      (await store.listAuditEvents({ userId: "ever", limit: 10 })).map((e) => e.details.n),
      ["3", "2", "1"],
    );
    const counted = { maxAgeMs: 0, maxEvents: 100_000, maxUserEvents: 100 };
    for (let i = 0; i < 300; i += 50)
      await store.appendAuditEvents(
        Array.from({ length: 50 }, (_, j) => auditRecord("ever-capped", i + j)),
        counted,
      );
    const kept = await store.listAuditEvents({ userId: "ever-capped", limit: 1000 });
    assert.ok(kept.length >= 100 && kept.length <= 110, `kept ${kept.length}`);
    assert.equal(kept[0].details.n, "299");
  });
}
