/**
 * The mirror's output queue: bytes and resizes come out in the order they went in, across its
 * buffer growing, compacting in place and being given back; a skip keeps the newest bytes, the size
 * the dropped part left and what is put in front; and what `takeAll` hands out survives what the
 * queue does next.
 */
import assert from "node:assert/strict";
import { OutputQueue, type QueueEntry } from "../src/terminals/output-queue.js";

type Item = { data: string } | { cols: number; rows: number };

/** Everything a queue gives, one `take` of at most `max` bytes at a time, as items. */
function drain(q: OutputQueue, max: number): Item[] {
  const out: Item[] = [];
  while (!q.empty) {
    const size = q.shiftResize();
    if (size) out.push(size);
    else out.push({ data: q.take(q.available(max)).toString("latin1") });
  }
  return out;
}

/** Items with neighbouring data joined, so differently cut streams compare equal. */
function joined(items: Array<Item | QueueEntry>): Item[] {
  const out: Item[] = [];
  for (const it of items) {
    const data = "data" in it ? (typeof it.data === "string" ? it.data : it.data.toString("latin1")) : undefined;
    const last = out.at(-1);
    if (data === undefined) out.push({ cols: (it as { cols: number }).cols, rows: (it as { rows: number }).rows });
    else if (data.length === 0) continue;
    else if (last && "data" in last) last.data += data;
    else out.push({ data });
  }
  return out;
}

/** A deterministic pseudo-random sequence (a test that fails can be replayed). */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

describe("mirror output queue", () => {
  it("gives back bytes and resizes in order through growth, in-place compaction and partial takes", () => {
    const rand = rng(7);
    const q = new OutputQueue();
    const expected: Item[] = [];
    const got: Item[] = [];
    let n = 0;
    for (let step = 0; step < 5000; step++) {
      const r = rand();
      if (r < 0.55) {
        const len = Math.floor(rand() * (rand() < 0.1 ? 70_000 : 700)) + 1;
        const data = Buffer.alloc(len);
        for (let i = 0; i < len; i++) data[i] = 32 + ((n + i) % 90);
        n += len;
        q.push(data);
        expected.push({ data: data.toString("latin1") });
      } else if (r < 0.6) {
        const size = { cols: 1 + Math.floor(rand() * 200), rows: 1 + Math.floor(rand() * 60) };
        q.resize(size.cols, size.rows);
        expected.push(size);
      } else {
        // Take some of what waits, as the mirror's feed does between pushes.
        for (let k = Math.floor(rand() * 4); k > 0 && !q.empty; k--) {
          const size = q.shiftResize();
          if (size) got.push(size);
          else got.push({ data: q.take(q.available(1 + Math.floor(rand() * 65_536))).toString("latin1") });
        }
      }
    }
    got.push(...drain(q, 4096));
    assert.deepEqual(joined(got), joined(expected));
    assert.equal(q.bytes, 0);
  });

  it("never gives a take across a resize", () => {
    const q = new OutputQueue();
    q.push(Buffer.from("abc"));
    q.resize(10, 5);
    q.push(Buffer.from("def"));
    assert.equal(q.shiftResize(), undefined, "bytes come before the resize");
    assert.equal(q.available(100), 3);
    assert.equal(q.take(3).toString(), "abc");
    assert.deepEqual(q.shiftResize(), { cols: 10, rows: 5 });
    assert.equal(q.take(q.available(100)).toString(), "def");
    assert.ok(q.empty);
  });

  it("gives its buffer back once a flood is taken, and keeps a small one", () => {
    const q = new OutputQueue();
    q.push(Buffer.alloc(3 * 1024 * 1024, 0x61));
    assert.ok(q.capacity >= 3 * 1024 * 1024);
    while (q.bytes > 0) q.take(q.available(65_536));
    assert.equal(q.capacity, 0, "a flood's buffer is not kept");
    q.push(Buffer.from("x"));
    q.take(1);
    assert.ok(q.capacity > 0 && q.capacity <= 16 * 1024, `an interactive terminal keeps ${q.capacity} bytes`);
  });

  it("drops all but the newest bytes, keeping the size the dropped part left and the resizes after it", () => {
    const q = new OutputQueue();
    q.push(Buffer.from("0123456789"));
    q.resize(1, 1);
    q.push(Buffer.from("abcdefghij"));
    q.resize(2, 2);
    q.push(Buffer.from("ABCDEFGHIJ"));
    q.resize(3, 3);
    q.push(Buffer.from("KLMNO"));
    const dropped = q.dropOldest(8);
    assert.equal(dropped.toString(), "0123456789abcdefghijABCDEFG");
    q.unshift(Buffer.from("<modes>"));
    assert.deepEqual(joined(drain(q, 3)), [
      { cols: 2, rows: 2 },
      { data: "<modes>HIJ" },
      { cols: 3, rows: 3 },
      { data: "KLMNO" },
    ]);
  });

  it("puts bytes in front even when more than were dropped (a new buffer)", () => {
    const q = new OutputQueue();
    q.push(Buffer.from("xyzKEEP"));
    q.resize(4, 4);
    assert.equal(q.dropOldest(4).toString(), "xyz");
    const front = Buffer.alloc(40_000, 0x6d);
    q.unshift(front);
    assert.deepEqual(joined(drain(q, 65_536)), [{ data: `${front.toString()}KEEP` }, { cols: 4, rows: 4 }]);
  });

  it("hands out entries that stay intact while the queue is refilled", () => {
    const q = new OutputQueue();
    q.push(Buffer.from("first"));
    q.resize(9, 9);
    q.push(Buffer.from("second"));
    const entries = q.takeAll();
    for (let i = 0; i < 100; i++) q.push(Buffer.alloc(1000, 0x7a));
    q.dropOldest(10);
    q.unshift(Buffer.from("zzzz"));
    assert.deepEqual(joined(entries), [{ data: "first" }, { cols: 9, rows: 9 }, { data: "second" }]);
    assert.ok(q.bytes > 0);
  });
});
