/**
 * A command's output passed on while it runs, for clients that asked (tool-report.ts):
 * - log messages at level "info", logger "stdout" or "stderr", carrying the output itself in
 *   whole lines (up to a newline or carriage return), gathered for up to FLUSH_MS (or FLUSH_CHARS) so that a flood of output is a few
 *   messages a second, not one per line; joined, they are the output exactly;
 * - progress: seconds run out of the timeout, with the amount of output and its last line, at
 *   each flush and every HEARTBEAT_MS of silence (clients that reset their timeout on progress
 *   keep waiting for a quiet command).
 */
import type { ToolReport } from "../tool-report.js";

const FLUSH_MS = 100;
const FLUSH_CHARS = 16 * 1024;
const HEARTBEAT_MS = 2_000;
const LAST_LINE_CHARS = 200;

type Stream = "stdout" | "stderr";

export class LiveOutput {
  private readonly pending: Record<Stream, string> = { stdout: "", stderr: "" };
  private chars = 0;
  private lastLine = "";
  private readonly started: number;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly logging: boolean;

  constructor(
    private readonly report: ToolReport,
    private readonly timeoutSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.logging = report.logs("info");
    if (report.wantsProgress) {
      this.heartbeat = setInterval(() => this.sendProgress(), HEARTBEAT_MS);
      this.sendProgress();
    }
  }

  add(stream: Stream, text: string): void {
    if (!text) return;
    this.chars += text.length;
    const lines = text.split("\n").filter(Boolean);
    if (lines.length) this.lastLine = lines[lines.length - 1];
    if (!this.logging) {
      this.scheduleFlush();
      return;
    }
    this.pending[stream] += text;
    if (this.pending[stream].length >= FLUSH_CHARS) this.flush(false);
    else this.scheduleFlush();
  }

  /** Sends what is left (partial lines included) and stops the timers. */
  end(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    this.flush(true);
  }

  private scheduleFlush() {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush(false);
    }, FLUSH_MS);
  }

  /** Whole lines of each stream (everything when `all`), then progress. */
  private flush(all: boolean) {
    for (const stream of ["stdout", "stderr"] as const) {
      const text = this.pending[stream];
      const lineEnd = Math.max(text.lastIndexOf("\n"), text.lastIndexOf("\r"));
      // Whole lines; a line longer than FLUSH_CHARS goes in pieces rather than waiting for its end.
      const cut = all || (lineEnd < 0 && text.length >= FLUSH_CHARS) ? text.length : lineEnd + 1;
      if (cut <= 0) continue;
      this.pending[stream] = text.slice(cut);
      this.report.log("info", stream, text.slice(0, cut));
    }
    this.sendProgress();
  }

  private sendProgress() {
    if (!this.report.wantsProgress) return;
    const seconds = Math.round(this.now() - this.started) / 1000;
    const line = this.lastLine.length > LAST_LINE_CHARS ? `${this.lastLine.slice(0, LAST_LINE_CHARS)}…` : this.lastLine;
    const message = `running for ${seconds} s; ${this.chars} characters of output${line ? `; last line: ${line}` : ""}`;
    // Progress must grow: a second report within the same millisecond is dropped.
    this.report.progress(seconds, this.timeoutSeconds, message);
  }
}
