/**
 * The per-session event store behind resumable streams: replay after an event id gives exactly the
 * later events of that stream, and once its limits drop an event, a resume that would skip it is
 * refused rather than answered with a gap. The clock is a variable the tests move.
 */
import assert from "node:assert/strict";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { seeded } from "../../../lib/testing/seeded.js";
import { type EventStoreLimits, SessionEventStore } from "../src/event-store.js";

const roomy: EventStoreLimits = {
  eventsPerStream: 1_000,
  bytesPerSession: 1e9,
  streamsPerSession: 1e6,
  answeredKeepMs: 1e9,
};
const priming = {} as JSONRPCMessage;
const note = (text: string): JSONRPCMessage => ({ jsonrpc: "2.0", method: "notifications/message", params: { text } });
const answer = (id: number): JSONRPCMessage => ({ jsonrpc: "2.0", id, result: { content: [] } });
const failure = (id: number): JSONRPCMessage => ({ jsonrpc: "2.0", id, error: { code: -32603, message: "no" } });
const bytesOf = (m: JSONRPCMessage) => JSON.stringify(m).length;

function storeWithClock(limits: Partial<EventStoreLimits> = {}) {
  const clock = { t: 0 };
  return { store: new SessionEventStore({ ...roomy, ...limits }, () => clock.t), clock };
}

async function replay(store: SessionEventStore, lastEventId: string) {
  const sent: { id: string; message: JSONRPCMessage }[] = [];
  const streamId = await store.replayEventsAfter(lastEventId, {
    send: async (id, message) => {
      sent.push({ id, message });
    },
  });
  return { streamId, sent };
}

async function assertRefused(store: SessionEventStore, lastEventId: string) {
  assert.equal(await store.getStreamIdForEventId(lastEventId), undefined, `${lastEventId} should not be resumable`);
  await assert.rejects(replay(store, lastEventId), /is not kept/);
}

describe("session event store", () => {
  it("replays exactly the later events of the event's own stream, in order, without priming events", async () => {
    const { store } = storeWithClock();
    const a0 = await store.storeEvent("A", priming);
    const b0 = await store.storeEvent("B", priming);
    const a1 = await store.storeEvent("A", note("a1"));
    const b1 = await store.storeEvent("B", note("b1"));
    const a2 = await store.storeEvent("A", note("a2"));
    await store.storeEvent("B", note("b2"));
    const a3 = await store.storeEvent("A", answer(1));
    assert.equal(new Set([a0, b0, a1, b1, a2, a3]).size, 6, "event ids are unique");

    const fromPriming = await replay(store, a0);
    assert.equal(fromPriming.streamId, "A");
    assert.deepEqual(fromPriming.sent, [
      { id: a1, message: note("a1") },
      { id: a2, message: note("a2") },
      { id: a3, message: answer(1) },
    ]);
    assert.deepEqual((await replay(store, a2)).sent, [{ id: a3, message: answer(1) }]);
    assert.deepEqual((await replay(store, a3)).sent, []);
    const fromB = await replay(store, b1);
    assert.equal(fromB.streamId, "B");
    assert.deepEqual(
      fromB.sent.map((e) => e.message),
      [note("b2")],
    );
  });

  it("a priming event stored later in a stream is kept as a cursor but never replayed", async () => {
    const { store } = storeWithClock();
    const first = await store.storeEvent("A", note("one"));
    const cursor = await store.storeEvent("A", priming);
    const two = await store.storeEvent("A", note("two"));
    assert.deepEqual((await replay(store, first)).sent, [{ id: two, message: note("two") }]);
    assert.deepEqual((await replay(store, cursor)).sent, [{ id: two, message: note("two") }]);
  });

  it("names the stream of a kept event id and nothing for unknown or malformed ids", async () => {
    const { store } = storeWithClock();
    const a = await store.storeEvent("A", note("a"));
    const b = await store.storeEvent("B", note("b"));
    const odd = await store.storeEvent("_GET_stream", note("get"));
    assert.equal(await store.getStreamIdForEventId(a), "A");
    assert.equal(await store.getStreamIdForEventId(b), "B");
    assert.equal(await store.getStreamIdForEventId(odd), "_GET_stream", "stream ids may contain the separator");

    const seqOfB = b.slice(b.lastIndexOf("_") + 1);
    const unknown = [
      "C_1", // no such stream
      `A_${seqOfB}`, // B's event under A's name
      "A_999", // not issued yet
      "A_-1",
      "A_1.5",
      "A_x",
      "A_", // an empty, zero or non-decimal number would name the stream's start
      "A_0",
      "A_1e0",
      "A_ 1",
      "A_01",
      "A",
      "_1",
      "",
    ];
    for (const id of unknown) await assertRefused(store, id);
  });

  it("keeps the newest eventsPerStream events; a resume from before the drop is refused, from the newest dropped id on it works", async () => {
    const { store } = storeWithClock({ eventsPerStream: 3 });
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push(await store.storeEvent("A", note(`a${i}`)));
    const other = await store.storeEvent("B", note("b1"));
    assert.deepEqual(store.size, { streams: 2, events: 4, bytes: 4 * bytesOf(note("a1")) });

    await assertRefused(store, ids[0]);
    assert.equal(await store.getStreamIdForEventId(ids[1]), "A");
    assert.deepEqual(
      (await replay(store, ids[1])).sent.map((e) => e.message),
      [note("a3"), note("a4"), note("a5")],
    );
    assert.deepEqual(
      (await replay(store, ids[3])).sent.map((e) => e.message),
      [note("a5")],
    );
    assert.equal(await store.getStreamIdForEventId(other), "B", "the other stream is untouched");
  });

  it("past bytesPerSession drops the oldest events of the stream quiet longest", async () => {
    const size = bytesOf(note("x0"));
    const { store, clock } = storeWithClock({ bytesPerSession: 5 * size });
    clock.t = 1;
    const a = [await store.storeEvent("A", note("a1")), await store.storeEvent("A", note("a2"))];
    clock.t = 2;
    const c = [await store.storeEvent("C", note("c1"))];
    clock.t = 3;
    const b = [await store.storeEvent("B", note("b1")), await store.storeEvent("B", note("b2"))];
    assert.deepEqual(store.size, { streams: 3, events: 5, bytes: 5 * size });

    clock.t = 4;
    c.push(await store.storeEvent("C", note("c2"))); // A has been quiet longest: a1 goes
    assert.deepEqual(store.size, { streams: 3, events: 5, bytes: 5 * size });
    assert.deepEqual(
      (await replay(store, a[0])).sent.map((e) => e.message),
      [note("a2")],
    );

    clock.t = 5;
    b.push(await store.storeEvent("B", note("b3"))); // a2 goes, A is empty
    clock.t = 6;
    b.push(await store.storeEvent("B", note("b4"))); // now C (last event at 4) is quiet longest: c1 goes
    assert.deepEqual(store.size, { streams: 3, events: 5, bytes: 5 * size });
    await assertRefused(store, a[0]);
    assert.deepEqual((await replay(store, a[1])).sent, [], "A's newest dropped event is still a valid cursor");
    assert.deepEqual(
      (await replay(store, c[0])).sent.map((e) => e.message),
      [note("c2")],
    );
    assert.deepEqual(
      (await replay(store, b[0])).sent.map((e) => e.message),
      [note("b2"), note("b3"), note("b4")],
    );
  });

  it("drops even the new event when it alone is over bytesPerSession, and says so on resume", async () => {
    const { store } = storeWithClock({ bytesPerSession: 100 });
    const small = await store.storeEvent("A", note("small"));
    const big = await store.storeEvent("A", note("x".repeat(200)));
    assert.deepEqual(store.size, { streams: 1, events: 0, bytes: 0 });
    await assertRefused(store, small);
    assert.deepEqual((await replay(store, big)).sent, []);
  });

  it("prunes an answered stream answeredKeepMs after its answer, and keeps one still waiting however quiet", async () => {
    const { store, clock } = storeWithClock({ answeredKeepMs: 1_000 });
    const answered = await store.storeEvent("answered", note("working"));
    await store.storeEvent("answered", answer(1));
    const failed = await store.storeEvent("failed", failure(2));
    const waiting = await store.storeEvent("waiting", note("still running"));
    clock.t = 500;
    await store.storeEvent("answered", note("after the answer")); // the answer's time still counts

    // Pruning happens on a store (at most once a second); this one is 1 ms before the time is up.
    clock.t = 999;
    await store.storeEvent("tick", priming);
    assert.equal(store.size.streams, 4);
    assert.equal(await store.getStreamIdForEventId(answered), "answered");
    assert.equal(await store.getStreamIdForEventId(failed), "failed");

    clock.t = 1_000;
    await store.storeEvent("tick", priming);
    await assertRefused(store, answered);
    await assertRefused(store, failed);
    assert.deepEqual(store.size, {
      streams: 2,
      events: 3,
      bytes: bytesOf(note("still running")) + 2 * bytesOf(priming),
    });

    // An hour without a word (exec may run that long): the client can still resume to the answer.
    clock.t = 3_600_000;
    await store.storeEvent("tick", priming);
    assert.equal(await store.getStreamIdForEventId(waiting), "waiting");
    await store.storeEvent("waiting", answer(3));
    assert.deepEqual(
      (await replay(store, waiting)).sent.map((e) => e.message),
      [answer(3)],
    );
    clock.t = 3_601_000;
    await store.storeEvent("fresh", note("new"));
    await assertRefused(store, waiting);
  });

  it("keeps at most streamsPerSession streams, dropping answered ones first, then the quietest", async () => {
    const { store, clock } = storeWithClock({ streamsPerSession: 3 });
    const quiet = await store.storeEvent("quiet", priming);
    clock.t = 10;
    const busy = await store.storeEvent("busy", priming);
    clock.t = 20;
    const done = await store.storeEvent("done", answer(1));
    clock.t = 30;
    await store.storeEvent("new1", priming); // over the limit: the answered stream goes first
    await assertRefused(store, done);
    assert.equal(await store.getStreamIdForEventId(quiet), "quiet");
    clock.t = 40;
    await store.storeEvent("busy", note("more"));
    await store.storeEvent("new2", priming); // then the one quiet longest
    await assertRefused(store, quiet);
    assert.equal(await store.getStreamIdForEventId(busy), "busy");
    assert.equal(store.size.streams, 3);
  });

  it("under random limits and traffic, every resume is refused or gives the exact rest of its stream", async () => {
    const random = seeded(21);
    const pick = (n: number) => Math.floor(random() * n);
    let resumed = 0;
    let refused = 0;
    for (let round = 0; round < 20; round++) {
      const limits: EventStoreLimits = {
        eventsPerStream: 1 + pick(20),
        bytesPerSession: 1_000 + pick(8_000),
        streamsPerSession: 3 + pick(8),
        answeredKeepMs: 1 + pick(2_000),
      };
      const { store, clock } = storeWithClock(limits);
      const issued = new Map<string, { id: string; message: JSONRPCMessage }[]>();
      for (let op = 0; op < 600; op++) {
        clock.t += pick(40);
        const streamId = `s${pick(6)}`;
        const events = issued.get(streamId) ?? [];
        issued.set(streamId, events);
        const message =
          events.length === 0 || random() < 0.05
            ? priming
            : random() < 0.05
              ? answer(op)
              : note("y".repeat(pick(limits.bytesPerSession / 30)));
        events.push({ id: await store.storeEvent(streamId, message), message });
        assert.ok(
          store.size.bytes <= limits.bytesPerSession,
          `${store.size.bytes} bytes over ${limits.bytesPerSession}`,
        );

        const [resumeStream, history] = [...issued][pick(issued.size)];
        // Mostly recent events (a client that just lost its connection), sometimes any.
        const from = random() < 0.7 ? Math.max(0, history.length - 1 - pick(25)) : pick(history.length);
        const kept = await store.getStreamIdForEventId(history[from].id);
        if (kept === undefined) {
          await assert.rejects(replay(store, history[from].id));
          refused++;
          continue;
        }
        const { streamId: replayed, sent } = await replay(store, history[from].id);
        assert.equal(kept, resumeStream);
        assert.equal(replayed, resumeStream);
        const rest = history.slice(from + 1).filter((e) => e.message !== priming);
        assert.deepEqual(sent, rest);
        resumed++;
      }

      // Byte accounting over the whole run: once every stream is answered and expired, only the
      // new event counts.
      for (const streamId of issued.keys()) await store.storeEvent(streamId, answer(0));
      clock.t += limits.answeredKeepMs + 1_000;
      await store.storeEvent("last", note("z"));
      assert.deepEqual(store.size, { streams: 1, events: 1, bytes: bytesOf(note("z")) });
    }
    assert.ok(
      resumed > 2_000 && refused > 2_000,
      `the runs should exercise both: ${resumed} resumed, ${refused} refused`,
    );
  });
});
