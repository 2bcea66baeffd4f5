/**
 * Regressions from the review of issue 21 (progress, logs, resumable streams). Each test shows a
 * bug found in review and passes once it is fixed:
 * - a flood of output at level info sent a progress notification per 16 KiB chunk (about one a
 *   millisecond), outside the per-call log budget, to a stream nothing slows down;
 * - a tool quiet for longer than idleKeepMs lost its stream from the event store while it still
 *   ran, so a client that dropped its connection afterwards could not resume to the result.
 * The clocks are variables the tests move; the notifications go through the real createToolReport.
 */
import assert from "node:assert/strict";
import type { JSONRPCMessage, ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import { defaultEventStoreLimits, SessionEventStore } from "../src/event-store.js";
import { createToolReport } from "../src/tool-report.js";
import { LiveOutput } from "../src/tools/live-output.js";

describe("review of issue 21", () => {
  it("under a flood of output at level info, live output sends progress a few times a second, not once a chunk", async () => {
    const sent: ServerNotification[] = [];
    const report = createToolReport(
      async (n) => {
        sent.push(n);
      },
      "token",
      { level: "info" },
    );
    const clock = { t: 0 };
    const live = new LiveOutput(report, 3600, () => clock.t);
    const chunk = "y\n".repeat(8 * 1024); // 16 KiB, as a runner passes on `yes`
    // Two seconds of output, a chunk a millisecond.
    for (clock.t = 1; clock.t <= 2_000; clock.t++) live.add("stdout", chunk);
    live.end();
    await report.settled();
    const progress = sent.filter((n) => n.method === "notifications/progress").length;
    // FLUSH_MS is 100 ms: about 20 flushes in two seconds, plus the first report and the last.
    assert.ok(progress <= 25, `${progress} progress notifications in two seconds of output`);
  });

  it("keeps the stream of a call still running after a long quiet spell, so its client can resume to the result", async () => {
    const clock = { t: 0 };
    const store = new SessionEventStore(defaultEventStoreLimits, () => clock.t);
    const cursor = await store.storeEvent("call", {} as JSONRPCMessage); // the priming event the client holds
    // exec may run an hour (timeout_seconds <= 3600) printing nothing, without a progress token.
    clock.t = 59 * 60_000;
    await store.storeEvent("other", { jsonrpc: "2.0", method: "notifications/message", params: {} });
    const result: JSONRPCMessage = { jsonrpc: "2.0", id: 7, result: { content: [] } };
    await store.storeEvent("call", result);

    assert.equal(await store.getStreamIdForEventId(cursor), "call", "the client's cursor is still resumable");
    const replayed: JSONRPCMessage[] = [];
    await store.replayEventsAfter(cursor, {
      send: async (_id, message) => {
        replayed.push(message);
      },
    });
    assert.deepEqual(replayed, [result]);
  });
});
