/**
 * A command's output passed on while it runs, for clients that asked (tool-report.ts):
 * - log messages at level "info", logger "stdout" or "stderr", carrying the output itself in
 *   whole lines (up to a newline or carriage return), gathered for up to FLUSH_MS (or FLUSH_CHARS)
 *   so that a flood of output is a few messages a second, not one per line; joined, they are the
 *   output exactly;
 * - progress: seconds run out of the timeout, with the amount of output and its last line, with
 *   flushes but at most every PROGRESS_MS (every SLOW_PROGRESS_MS after the first hundred), and
 *   after HEARTBEAT_MS without any (clients that reset their timeout on progress keep waiting for
 *   a quiet command). So an hour of flood is a few thousand notifications, and the log budget of
 *   tool-report.ts bounds the rest: what a client that stopped reading costs is bounded.
 */
import type { ToolReport } from "../tool-report.js";

const FLUSH_MS = 100;
const FLUSH_CHARS = 16 * 1024;
const HEARTBEAT_MS = 2_000;
const PROGRESS_MS = 100;
const SLOW_PROGRESS_MS = 1_000;
const FAST_PROGRESS_REPORTS = 100;
const LAST_LINE_CHARS = 200;
const lineEnds = /\r\n|\r|\n/;

type Stream = "stdout" | "stderr";

/** The last line a stream showed: its unfinished line if it has one, else its last whole one. */
class LastLine {
  private partial = "";
  private complete = "";

  add(text: string) {
    const parts = (this.partial + text).split(lineEnds);
    // Only the start of a very long line is ever shown.
    this.partial = (parts.pop() ?? "").slice(0, 2 * LAST_LINE_CHARS);
    const whole = parts.filter(Boolean).at(-1);
    if (whole !== undefined) this.complete = whole.slice(0, 2 * LAST_LINE_CHARS);
  }

  get text(): string {
    return this.partial || this.complete;
  }
}

export class LiveOutput {
  private readonly pending: Record<Stream, string> = { stdout: "", stderr: "" };
  private readonly lastLines: Record<Stream, LastLine> = { stdout: new LastLine(), stderr: new LastLine() };
  private lastStream: Stream = "stdout";
  private chars = 0;
  private readonly started: number;
  private lastProgressAt = Number.NEGATIVE_INFINITY;
  private progressReports = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly report: ToolReport,
    private readonly timeoutSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    if (report.wantsProgress) {
      this.heartbeat = setInterval(() => {
        if (this.now() - this.lastProgressAt >= HEARTBEAT_MS - FLUSH_MS) this.sendProgress(true);
      }, HEARTBEAT_MS);
      this.sendProgress(true);
    }
  }

  add(stream: Stream, text: string): void {
    // Most calls have no one listening: then nothing is kept and no timer runs.
    if (!text || !(this.report.wantsProgress || this.report.logs("info"))) return;
    this.chars += text.length;
    this.lastLines[stream].add(text);
    this.lastStream = stream;
    // Once the log budget is spent (or if the client never chose a level) nothing more is kept.
    if (this.report.logs("info")) this.pending[stream] += text;
    if (this.pending[stream].length >= FLUSH_CHARS) this.flush([stream], false);
    else this.scheduleFlush();
  }

  /** Sends what is left (partial lines included) and stops the timers. */
  end(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    this.flush(["stdout", "stderr"], true);
    this.sendProgress(true);
  }

  private scheduleFlush() {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush(["stdout", "stderr"], false);
    }, FLUSH_MS);
  }

  /** Whole lines of the streams (everything when `all`), then progress. */
  private flush(streams: Stream[], all: boolean) {
    for (const stream of streams) {
      const text = this.pending[stream];
      const lineEnd = Math.max(text.lastIndexOf("\n"), text.lastIndexOf("\r"));
      // Whole lines; a line longer than FLUSH_CHARS goes in pieces rather than waiting for its end.
      const cut = all || (lineEnd < 0 && text.length >= FLUSH_CHARS) ? text.length : lineEnd + 1;
      if (cut <= 0) continue;
      this.pending[stream] = text.slice(cut);
      this.report.log("info", stream, text.slice(0, cut));
    }
    this.sendProgress(false);
  }

  private sendProgress(always: boolean) {
    if (!this.report.wantsProgress) return;
    const gap = this.progressReports < FAST_PROGRESS_REPORTS ? PROGRESS_MS : SLOW_PROGRESS_MS;
    if (!always && this.now() - this.lastProgressAt < gap) return;
    this.progressReports++;
    const seconds = Math.round(this.now() - this.started) / 1000;
    this.lastProgressAt = this.now();
    const last = this.lastLines[this.lastStream].text;
    const line = last.length > LAST_LINE_CHARS ? `${last.slice(0, LAST_LINE_CHARS)}…` : last;
    const message = `running for ${seconds} s; ${this.chars} characters of output${line ? `; last line: ${line}` : ""}`;
    // Progress must grow: a second report within the same millisecond is dropped.
    this.report.progress(seconds, this.timeoutSeconds, message);
  }
}
