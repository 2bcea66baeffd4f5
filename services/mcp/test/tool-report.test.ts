/**
 * What a running tool tells its caller: log messages filtered by the session's level, progress only
 * for a progress token and only increasing, all of it in the order made even when the transport is
 * slow or failing. `send` here records what reached it, the way the SDK's sendNotification would.
 */
import assert from "node:assert/strict";
import type { LoggingLevel, ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import { createToolReport, LOG_CHARS_PER_CALL, type LogLevelSetting } from "../src/tool-report.js";

const levels: LoggingLevel[] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/** A transport that records each notification once its (optionally delayed) send finishes. */
function recordingSend(behave: { delayMs?: () => number; fails?: (n: ServerNotification) => boolean } = {}) {
  const delivered: ServerNotification[] = [];
  const state = { inFlight: 0, maxInFlight: 0, attempts: 0 };
  const send = async (n: ServerNotification) => {
    state.attempts++;
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    try {
      const ms = behave.delayMs?.() ?? 0;
      if (ms) await new Promise((r) => setTimeout(r, ms));
      if (behave.fails?.(n)) throw new Error("client gone");
      delivered.push(n);
    } finally {
      state.inFlight--;
    }
  };
  return { send, delivered, state };
}

const logData = (n: ServerNotification) => (n.method === "notifications/message" ? n.params.data : undefined);
const logLevel = (n: ServerNotification) => (n.method === "notifications/message" ? n.params.level : undefined);
const progressOf = (n: ServerNotification) => (n.method === "notifications/progress" ? n.params.progress : undefined);

describe("tool report", () => {
  it("sends no log message before the client chose a level, and follows the level once chosen", async () => {
    const { send, delivered } = recordingSend();
    const setting: LogLevelSetting = { level: undefined };
    const report = createToolReport(send, undefined, setting);
    for (const level of levels) {
      assert.equal(report.logs(level), false);
      report.log(level, "stdout", `at ${level}`);
    }
    await report.settled();
    assert.deepEqual(delivered, []);

    setting.level = "warning";
    report.log("info", "stdout", "below");
    report.log("error", "stderr", { line: "above" });
    await report.settled();
    assert.deepEqual(delivered, [
      { method: "notifications/message", params: { level: "error", logger: "stderr", data: { line: "above" } } },
    ]);
  });

  it("passes a message at or above the chosen level and nothing below it, for every pair of levels", async () => {
    for (const [chosen, chosenLevel] of levels.entries()) {
      const { send, delivered } = recordingSend();
      const report = createToolReport(send, undefined, { level: chosenLevel });
      for (const [severity, level] of levels.entries()) {
        assert.equal(report.logs(level), severity >= chosen, `${level} at ${chosenLevel}`);
        report.log(level, "test", level);
      }
      await report.settled();
      assert.deepEqual(delivered.map(logData), levels.slice(chosen), `at ${chosenLevel}`);
    }
  });

  it("sends progress only for a progress token, only increasing, with total and message only when given", async () => {
    const silent = recordingSend();
    const noToken = createToolReport(silent.send, undefined, { level: "debug" });
    assert.equal(noToken.wantsProgress, false);
    noToken.progress(1, 10, "ignored");
    await noToken.settled();
    assert.deepEqual(silent.delivered, []);

    for (const progressToken of ["tok", 7]) {
      const { send, delivered } = recordingSend();
      const report = createToolReport(send, progressToken, { level: undefined });
      assert.equal(report.wantsProgress, true);
      report.progress(0);
      report.progress(0); // not increasing
      report.progress(1.5, 10);
      report.progress(1); // going back
      report.progress(Number.NaN);
      report.progress(2, undefined, "two");
      report.progress(3, 10, "three");
      report.progress(3, 10, "three again");
      await report.settled();
      assert.deepEqual(
        delivered.map((n) => n.params),
        [
          { progressToken, progress: 0 },
          { progressToken, progress: 1.5, total: 10 },
          { progressToken, progress: 2, message: "two" },
          { progressToken, progress: 3, total: 10, message: "three" },
        ],
      );
      assert.ok(delivered.every((n) => n.method === "notifications/progress"));
    }
  });

  it("delivers notifications one at a time in the order made, however slow each send is", async () => {
    const { send, delivered, state } = recordingSend({ delayMs: () => Math.floor(Math.random() * 4) });
    const report = createToolReport(send, "tok", { level: "info" });
    const made: string[] = [];
    for (let i = 1; i <= 150; i++) {
      if (i % 3 === 0) {
        report.progress(i);
        made.push(`progress ${i}`);
      } else {
        report.log("info", "stdout", `line ${i}`);
        made.push(`log line ${i}`);
      }
      if (i % 25 === 0) await new Promise((r) => setTimeout(r, 2)); // some sends are made while others are running
    }
    await report.settled();
    assert.deepEqual(
      delivered.map((n) =>
        n.method === "notifications/progress" ? `progress ${n.params.progress}` : `log ${logData(n)}`,
      ),
      made,
    );
    assert.equal(state.maxInFlight, 1);
  });

  it("a failing send loses only its own notification, and settled() still resolves", async () => {
    const { send, delivered, state } = recordingSend({
      delayMs: () => 1,
      fails: (n) => typeof logData(n) === "string" && (logData(n) as string).endsWith("!"),
    });
    const report = createToolReport(send, undefined, { level: "debug" });
    const made = ["one", "two!", "three", "four!", "five!", "six"];
    for (const text of made) report.log("info", "stdout", text);
    await report.settled();
    assert.equal(state.attempts, made.length);
    assert.deepEqual(delivered.map(logData), ["one", "three", "six"]);

    const throwing = createToolReport(
      () => {
        throw new Error("thrown before any promise");
      },
      "tok",
      { level: "debug" },
    );
    throwing.progress(1);
    throwing.log("error", "stderr", "lost");
    await throwing.settled();
  });

  it("settled() resolves only after every notification queued so far was sent", async () => {
    const gates: (() => void)[] = [];
    const finished: number[] = [];
    const report = createToolReport(
      (n) =>
        new Promise<void>((resolve) =>
          gates.push(() => {
            finished.push(progressOf(n) ?? -1);
            resolve();
          }),
        ),
      "tok",
      { level: undefined },
    );
    await report.settled(); // nothing queued yet
    report.progress(1);
    report.progress(2);
    report.progress(3);
    let settled = false;
    const settling = report.settled().then(() => {
      settled = true;
    });
    for (let open = 0; open < 3; open++) {
      await waitFor(() => gates.length > open);
      assert.equal(settled, false, `settled with ${3 - open} sends unfinished`);
      gates[open]();
    }
    await settling;
    assert.deepEqual(finished, [1, 2, 3]);
  });

  it(`after ${LOG_CHARS_PER_CALL} log characters sends one warning and nothing more`, async () => {
    const { send, delivered } = recordingSend();
    const report = createToolReport(send, "tok", { level: "info" });
    const quarter = "q".repeat(LOG_CHARS_PER_CALL / 4);
    for (let i = 0; i < 4; i++) report.log("info", "stdout", quarter);
    assert.equal(report.logs("info"), true, "exactly at the budget");
    report.log("info", "stderr", "x"); // one past the budget
    assert.equal(report.logs("emergency"), false, "nothing more will be sent, so nothing need be gathered");
    report.log("error", "stderr", "after");
    report.log("info", "stdout", { after: true });
    report.progress(1); // progress is not log output
    await report.settled();

    assert.equal(delivered.length, 6);
    assert.deepEqual(delivered.slice(0, 4).map(logData), [quarter, quarter, quarter, quarter]);
    const warning = delivered[4];
    assert.equal(warning.method, "notifications/message");
    assert.equal(warning.params.level, "warning");
    assert.equal(warning.params.logger, "stderr");
    assert.match(String(warning.params.data), new RegExp(`passed ${LOG_CHARS_PER_CALL} characters`));
    assert.deepEqual(delivered[5].params, { progressToken: "tok", progress: 1 });
  });

  it("keeps the budget's warning to clients whose level admits warnings", async () => {
    const { send, delivered } = recordingSend();
    const report = createToolReport(send, undefined, { level: "error" });
    report.log("error", "stdout", "e".repeat(LOG_CHARS_PER_CALL));
    report.log("error", "stdout", "one past the budget");
    report.log("critical", "stdout", "after");
    await report.settled();
    assert.deepEqual(delivered.map(logLevel), ["error"], "no warning below the chosen level, nothing after");
  });

  it("counts structured log data by its JSON length against the budget", async () => {
    const { send, delivered } = recordingSend();
    const report = createToolReport(send, undefined, { level: "debug" });
    const data = { text: "d".repeat(LOG_CHARS_PER_CALL / 2) };
    report.log("debug", "json", data); // a little over half, as JSON
    report.log("debug", "json", data); // passes the budget
    report.log("debug", "json", "gone");
    await report.settled();
    assert.equal(delivered.length, 2);
    assert.deepEqual(logData(delivered[0]), data);
    assert.equal(logLevel(delivered[1]), "warning");
  });
});

async function waitFor(condition: () => boolean) {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(condition(), "condition not reached");
}
