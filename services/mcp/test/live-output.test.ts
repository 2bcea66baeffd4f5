/**
 * A command's output passed on while it runs: log messages that join to exactly the output, in
 * whole lines and few messages however much arrives, and progress with a heartbeat. Real timers
 * (FLUSH_MS is 100 ms, HEARTBEAT_MS 2 s); the report records what LiveOutput asks it to send.
 */
import assert from "node:assert/strict";
import type { LoggingLevel, ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import { seeded } from "../../../lib/testing/seeded.js";
import { createToolReport, type ToolReport } from "../src/tool-report.js";
import { LiveOutput } from "../src/tools/live-output.js";

const levels: LoggingLevel[] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

interface Recorded {
  report: ToolReport;
  logs: { level: LoggingLevel; logger: string; data: string }[];
  progress: { progress: number; total?: number; message?: string }[];
}

/** A ToolReport for a client that chose `level` (or none) and sent a progress token or not, recording each call. */
function recordingReport(level: LoggingLevel | undefined, wantsProgress: boolean): Recorded {
  const logs: Recorded["logs"] = [];
  const progress: Recorded["progress"] = [];
  const logsAt = (l: LoggingLevel) => level !== undefined && levels.indexOf(l) >= levels.indexOf(level);
  const report: ToolReport = {
    wantsProgress,
    logs: logsAt,
    log(l, logger, data) {
      assert.ok(logsAt(l), `logged at ${l} though the client chose ${level}`);
      assert.equal(typeof data, "string");
      logs.push({ level: l, logger, data: data as string });
    },
    progress(p, total, message) {
      assert.ok(wantsProgress, "progress without a progress token");
      progress.push({ progress: p, total, message });
    },
  };
  return { report, logs, progress };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const joined = (r: Recorded, logger: string) =>
  r.logs
    .filter((m) => m.logger === logger)
    .map((m) => m.data)
    .join("");
const endsALine = (text: string) => text.endsWith("\n") || text.endsWith("\r");

describe("live output", () => {
  it("at level info, the log messages of each stream join to exactly its output, partial lines flushed at end()", async () => {
    const rec = recordingReport("info", false);
    const live = new LiveOutput(rec.report, 60);
    const out: string[] = [];
    const err: string[] = [];
    const add = (stream: "stdout" | "stderr", text: string) => {
      (stream === "stdout" ? out : err).push(text);
      live.add(stream, text);
    };
    add("stdout", "hello\nwor");
    add("stderr", "err1\nerr2");
    add("stdout", "ld\n");
    await sleep(150);
    add("stdout", "10%\r20%\r30%\r");
    add("stdout", "ünïcödé ✓\r\n");
    await sleep(150);
    add("stdout", "L".repeat(20 * 1024)); // one line longer than a message
    add("stdout", "\nafter\n");
    add("stderr", "\r\n");
    add("stdout", Array.from({ length: 800 }, (_, i) => `line ${i} ${"-".repeat(40)}\n`).join(""));
    await sleep(150);
    add("stdout", "");
    add("stdout", "partial");
    add("stderr", "tail");
    live.end();

    assert.equal(joined(rec, "stdout"), out.join(""));
    assert.equal(joined(rec, "stderr"), err.join(""));
    assert.ok(rec.logs.every((m) => m.level === "info"));
    assert.deepEqual(new Set(rec.logs.map((m) => m.logger)), new Set(["stdout", "stderr"]));
    assert.equal(rec.logs.at(-1)?.data, "tail");
  });

  it("sends whole lines until end(), however the output is cut into chunks", async () => {
    const random = seeded(7);
    const rec = recordingReport("debug", false);
    const live = new LiveOutput(rec.report, 60);
    let text = "";
    for (let i = 0; text.length < 80_000; i++)
      text += `${i}:${"w".repeat(Math.floor(random() * 300))}${random() < 0.2 ? "\r" : "\n"}`;
    text += "no newline at the end";
    for (let at = 0; at < text.length; ) {
      const size = 1 + Math.floor(random() * 3_000);
      live.add("stdout", text.slice(at, at + size));
      at += size;
      if (random() < 0.3) await sleep(Math.floor(random() * 40));
    }
    const beforeEnd = rec.logs.length;
    live.end();

    assert.ok(beforeEnd > 3, `only ${beforeEnd} messages before end()`);
    for (const m of rec.logs.slice(0, beforeEnd)) assert.ok(endsALine(m.data), `cut mid-line: …${m.data.slice(-30)}`);
    const atEnd = rec.logs.slice(beforeEnd);
    assert.equal(atEnd.length, 1, "end() sends what is left in one message");
    assert.ok(atEnd[0].data.endsWith("no newline at the end"));
    assert.ok(joined(rec, "stdout") === text, "the messages join to the output");
  });

  it("turns a flood of 20,000 lines into a few messages", async () => {
    const rec = recordingReport("info", false);
    const live = new LiveOutput(rec.report, 60);
    let out = "";
    let err = "";
    for (let i = 0; i < 20_000; i++) {
      const line = `line ${i}\n`;
      if (i % 10 === 0) {
        err += line;
        live.add("stderr", line);
      } else {
        out += line;
        live.add("stdout", line);
      }
      if (i % 1_000 === 0) await new Promise((r) => setImmediate(r));
    }
    live.end();
    assert.ok(rec.logs.length < 50, `${rec.logs.length} messages for 20,000 lines`);
    assert.equal(joined(rec, "stdout"), out);
    assert.equal(joined(rec, "stderr"), err);
  });

  it("sends no log message when the client chose no level or one above info", async () => {
    for (const level of [undefined, "notice", "error"] as const) {
      const rec = recordingReport(level, false);
      const live = new LiveOutput(rec.report, 60);
      live.add("stdout", "one\ntwo\n");
      live.add("stderr", "three");
      await sleep(150);
      live.add("stdout", "four");
      live.end();
      assert.deepEqual(rec.logs, [], `at ${level}`);
      assert.deepEqual(rec.progress, []);
    }
  });

  it("reports progress as seconds of the timeout with the output's size and last line", async () => {
    const clock = { t: 50_000 };
    const rec = recordingReport(undefined, true);
    const live = new LiveOutput(rec.report, 30, () => clock.t);
    assert.deepEqual(rec.progress, [{ progress: 0, total: 30, message: "running for 0 s; 0 characters of output" }]);

    clock.t += 1_500;
    live.add("stdout", "first\nsecond line\n");
    await sleep(150);
    assert.deepEqual(rec.progress.at(-1), {
      progress: 1.5,
      total: 30,
      message: "running for 1.5 s; 18 characters of output; last line: second line",
    });

    clock.t += 1_250;
    const long = "z".repeat(300);
    live.add("stderr", `${long}\n`);
    await sleep(150);
    assert.deepEqual(rec.progress.at(-1), {
      progress: 2.75,
      total: 30,
      message: `running for 2.75 s; 319 characters of output; last line: ${"z".repeat(200)}…`,
    });

    clock.t += 10;
    live.add("stdout", "x".repeat(200));
    await sleep(150);
    assert.equal(rec.progress.at(-1)?.progress, 2.75, "at most one report a PROGRESS_MS (100 ms)");
    clock.t += 90;
    live.add("stdout", "x");
    await sleep(150);
    assert.equal(
      rec.progress.at(-1)?.message,
      `running for 2.85 s; 520 characters of output; last line: ${"x".repeat(200)}…`,
    );
    live.end();
    const values = rec.progress.map((p) => p.progress);
    assert.deepEqual(
      values,
      [...values].sort((a, b) => a - b),
      "progress never goes back",
    );
  });

  it("names as last line the one being written, across chunks and carriage returns", async () => {
    const clock = { t: 0 };
    const rec = recordingReport(undefined, true);
    const live = new LiveOutput(rec.report, 30, () => clock.t);
    const lastLine = async (stream: "stdout" | "stderr", text: string) => {
      clock.t += 100;
      live.add(stream, text);
      await sleep(150);
      return /last line: (.*)$/s.exec(rec.progress.at(-1)?.message ?? "")?.[1];
    };
    assert.equal(await lastLine("stdout", "hel"), "hel");
    assert.equal(await lastLine("stdout", "lo\n"), "hello", "a line split over two chunks is one line");
    assert.equal(await lastLine("stdout", "10%\r20%\r"), "20%", "carriage returns end lines too");
    assert.equal(await lastLine("stdout", "\r\n"), "20%");
    assert.equal(await lastLine("stderr", "warn: x\r\nwarn: y"), "warn: y", "the stream written last");
    live.end();
  });

  it("through a real tool report, the progress a client gets strictly increases and totals the timeout", async () => {
    const sent: ServerNotification[] = [];
    const report = createToolReport(
      async (n) => {
        sent.push(n);
      },
      "tok",
      { level: "info" },
    );
    const live = new LiveOutput(report, 45);
    for (let i = 0; i < 5; i++) {
      live.add("stdout", `step ${i}\n`);
      live.add("stdout", `step ${i} again\n`);
      await sleep(120);
    }
    live.end();
    await report.settled();
    const progress = sent.flatMap((n) => (n.method === "notifications/progress" ? [n.params] : []));
    assert.ok(progress.length >= 5, `${progress.length} progress notifications`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
    assert.ok(progress.every((p) => p.total === 45 && p.progressToken === "tok"));
    assert.match(progress.at(-1)?.message ?? "", /; 100 characters of output; last line: step 4 again$/);
  });

  it("sends a heartbeat progress during silence", async function () {
    this.timeout(10_000);
    const rec = recordingReport("info", true);
    const live = new LiveOutput(rec.report, 120);
    await sleep(2_300);
    live.end();
    const heartbeat = rec.progress[1];
    assert.ok(heartbeat, `only ${rec.progress.length} progress reports in 2.3 s`);
    assert.ok(heartbeat.progress >= 1.9 && heartbeat.progress <= 2.3, `heartbeat at ${heartbeat.progress} s`);
    assert.equal(heartbeat.total, 120);
    // Timers may fire a millisecond before Date.now() says the interval passed.
    assert.match(heartbeat.message ?? "", /^running for (1\.9\d*|2(\.\d+)?) s; 0 characters of output$/);
    assert.deepEqual(rec.logs, []);
  });

  it("end() stops its timers and sends nothing after", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const rec = recordingReport("info", true);
    const live = new LiveOutput(rec.report, 60);
    live.add("stdout", "waiting for a newline");
    assert.equal(timers(), before + 2, "a heartbeat and a flush timer run");
    live.end();
    assert.equal(timers(), before);
    const counts = [rec.logs.length, rec.progress.length];
    await sleep(200);
    assert.deepEqual([rec.logs.length, rec.progress.length], counts);
    assert.equal(rec.logs.at(-1)?.data, "waiting for a newline");
  });
});
