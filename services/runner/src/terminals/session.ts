/**
 * A terminal session (after VS Code's ptyHost): it owns its PTY (a session and process-group
 * leader, so closing kills the whole group), a bounded scrollback, and flow control.
 *
 * Output is batched adaptively: interactive output goes out on the next event-loop turn (a
 * keystroke's echo waits for no timer), bulk output in frames of BATCH_MS or BATCH_BYTES (large
 * frames matter: per-message cost dominates on the gRPC path); a client whose transport takes frames
 * one at a time (attach.ts) merges those that queue up while it is busy. Each attachment reports its backlog: output
 * delivered but not yet acknowledged (once the client sends acks; TerminalFlow's 100k/5k as in VS Code)
 * and output not yet taken by its transport (1 MiB/256 KiB). While any attachment is above a high
 * watermark the PTY is paused (the kernel then blocks the writer); it resumes when every attachment
 * is below the low watermarks. Replayed scrollback does not count, and acks for it are
 * ignored. Two numbers, on purpose: the watermarks bound how far a slow client falls behind, while
 * clients ack every TerminalFlow.ackBytes (16 KiB), well below the high watermark, so one that keeps
 * up never pauses the PTY.
 *
 * Output also feeds the session's mirror (mirror.ts), a headless terminal whose serialization is
 * what a reattach replays; the raw bytes stay in the scrollback ring for ReadScrollback. The mirror
 * never pauses the PTY: under a flood it skips ahead rather than holding the terminal to its speed.
 *
 * No output is lost at exit (node-pty #72): when the last process closes the PTY's slave side, Linux
 * may report EIO on the master before the final bytes were read (about half the runs of `printf
 * big; exit` lose a tail here). The session therefore holds its own descriptor of the slave
 * (O_NOCTTY), so the master never sees that hangup; node-pty then notices the exit through
 * waitpid and closes the master 200 ms later, after the remaining bytes were read. A paused PTY
 * would lose them at that close, so a paused session polls its leader and resumes once it is gone.
 */
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import type { IPty } from "@lydell/node-pty";
import { TerminalFlow } from "../../../../lib/contracts/runner-access.js";
import { isAlive, killGroup } from "../../../../lib/kit/pids.js";
import { RingBuffer } from "../ring-buffer.js";
import { signalName } from "../signals.js";
import { TerminalMirror } from "./mirror.js";

export const BATCH_MS = 5;
export const BATCH_BYTES = 256 * 1024;
/** Output per event-loop turn (or per window) from which a session counts as streaming. */
export const STREAM_BYTES = 1024;
/**
 * Output queued for a transport (bytes not yet taken by the socket or HTTP/2 stream) above which the
 * PTY pauses. Larger than the ack watermarks (TerminalFlow): with frames of up to BATCH_BYTES, 100k/5k would stop the PTY after
 * every other frame and halve throughput; this still bounds memory per attachment.
 */
export const TRANSPORT_HIGH_WATERMARK = 1024 * 1024;
export const TRANSPORT_LOW_WATERMARK = 256 * 1024;
/** How often a paused session checks that its leader lives and re-checks its clients' backlogs. */
const PAUSED_POLL_MS = 50;

export interface TerminalExitInfo {
  exitCode: number;
  signal: string;
}

export interface AttachmentSink {
  /** Delivers one output frame. */
  output(data: Buffer): void;
  /** The process exited; no more output follows. */
  exit(info: TerminalExitInfo): void;
  /** Bytes delivered but not yet taken by the transport. */
  transportBacklog(): number;
}

export class Attachment {
  private unacked = 0;
  private acking = false;
  private ignoreAcks = 0;
  /** Frames (and the exit) that arrive while the replay is being taken; they follow it. */
  private held: Array<Buffer | TerminalExitInfo> | undefined;
  private heldBytes = 0;
  /** Bytes of the replay that came first. */
  replayBytes = 0;

  constructor(
    private readonly session: TerminalSession,
    readonly sink: AttachmentSink,
  ) {}

  /** Whether this attachment wants the PTY paused (or, when `resume`, lets it resume). */
  overWatermark(): boolean {
    return (this.acking && this.unacked > TerminalFlow.highWatermark) || this.backlog() > TRANSPORT_HIGH_WATERMARK;
  }

  underWatermark(): boolean {
    return (!this.acking || this.unacked < TerminalFlow.lowWatermark) && this.backlog() < TRANSPORT_LOW_WATERMARK;
  }

  /** Delivers a live output frame (or holds it until the replay went out). */
  output(frame: Buffer): void {
    if (this.held) {
      this.held.push(frame);
      this.heldBytes += frame.length;
      return;
    }
    this.unacked += frame.length;
    this.sink.output(frame);
  }

  exit(info: TerminalExitInfo): void {
    if (this.held) this.held.push(info);
    else this.sink.exit(info);
  }

  /** Holds live output until `replay` is called. */
  hold(): void {
    this.held ??= [];
  }

  /** Sends the replay, then what was held meanwhile. */
  replay(data: Buffer): void {
    this.replayBytes = data.length;
    this.ignoreAcks = data.length;
    for (let i = 0; i < data.length; i += BATCH_BYTES) this.sink.output(data.subarray(i, i + BATCH_BYTES));
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    for (const item of held) {
      if (Buffer.isBuffer(item)) this.output(item);
      else this.exit(item);
    }
  }

  /** The client processed `n` more output bytes. */
  ack(n: number): void {
    this.acking = true;
    const ignored = Math.min(this.ignoreAcks, n);
    this.ignoreAcks -= ignored;
    this.unacked = Math.max(0, this.unacked - (n - ignored));
    this.session.checkFlow();
  }

  /** The transport took queued bytes: re-evaluate pausing. */
  drained(): void {
    this.session.checkFlow();
  }

  detach(): void {
    this.session.detach(this);
  }

  private backlog(): number {
    return this.sink.transportBacklog() + this.heldBytes;
  }
}

export interface SessionInit {
  id: string;
  name: string;
  command: string[];
  cwd: string;
  pty: IPty;
  scrollbackBytes: number;
  onExit?: (s: TerminalSession) => void;
}

export class TerminalSession {
  readonly id: string;
  readonly name: string;
  readonly command: string[];
  readonly cwd: string;
  readonly pid: number;
  readonly createTime = Date.now();
  cols: number;
  rows: number;
  exit: TerminalExitInfo | undefined;
  private readonly pty: IPty;
  private readonly scrollback: RingBuffer;
  private readonly mirror: TerminalMirror;
  /** A client attached once: later ones get live output only, or the replay they ask for. */
  private everAttached = false;
  private readonly attachments = new Set<Attachment>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled: NodeJS.Immediate | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private streaming = false;
  private paused = false;
  private pausedPoll: NodeJS.Timeout | undefined;
  private readonly exited: Promise<void>;
  private slaveFd: number | undefined;

  constructor(init: SessionInit) {
    this.id = init.id;
    this.name = init.name;
    this.command = init.command;
    this.cwd = init.cwd;
    this.pty = init.pty;
    this.pid = init.pty.pid;
    this.cols = init.pty.cols;
    this.rows = init.pty.rows;
    this.scrollback = new RingBuffer(init.scrollbackBytes);
    this.mirror = new TerminalMirror(this.cols, this.rows);
    this.slaveFd = holdSlave(init.pty);
    this.pty.onData((d) => this.onData(d as unknown as Buffer));
    this.exited = new Promise((resolve) => {
      this.pty.onExit(({ exitCode, signal }) => {
        this.flush();
        this.mirror.hold(false);
        clearTimeout(this.flushTimer);
        this.flushTimer = undefined;
        if (this.flushScheduled) clearImmediate(this.flushScheduled);
        this.stopPausedPoll();
        if (this.slaveFd !== undefined) closeSync(this.slaveFd);
        this.slaveFd = undefined;
        this.exit = { exitCode, signal: signal ? signalName(signal) : "" };
        for (const a of this.attachments) a.exit(this.exit);
        this.attachments.clear();
        init.onExit?.(this);
        resolve();
      });
    });
  }

  get attachedClients(): number {
    return this.attachments.size;
  }

  get totalBytes(): number {
    return this.scrollback.total + this.pendingBytes;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Attaches a client. With `replay`, the sink first gets the mirror's serialization of the output
   * so far (as `replayBytes`); output that arrives while it is taken waits and follows it. Without
   * it, the terminal's first client gets the output written before it came, as it was written (up
   * to the scrollback ring's size): a short command started with the terminal may be done before
   * its client is attached.
   */
  async attach(sink: AttachmentSink, replay: boolean): Promise<Attachment> {
    this.flush();
    const a = new Attachment(this, sink);
    const exited = this.exit;
    const first = !this.everAttached;
    this.everAttached = true;
    if (!exited) this.attachments.add(a);
    if (replay) {
      a.hold();
      a.replay(await this.mirror.snapshot());
    } else if (first) {
      const early = this.scrollback.tail(this.scrollback.capacity);
      for (let i = 0; i < early.length; i += BATCH_BYTES) a.output(early.subarray(i, i + BATCH_BYTES));
    }
    if (exited) sink.exit(exited);
    return a;
  }

  detach(a: Attachment): void {
    if (this.attachments.delete(a)) this.checkFlow();
  }

  write(data: Uint8Array | string): void {
    if (this.exit) return;
    // node-pty writes Buffers as raw bytes; its typings only mention strings.
    this.pty.write(
      (typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)) as string,
    );
  }

  resize(cols: number, rows: number): void {
    this.cols = clamp(cols);
    this.rows = clamp(rows);
    if (this.exit) return;
    this.pty.resize(this.cols, this.rows);
    this.mirror.resize(this.cols, this.rows);
  }

  readScrollback(maxBytes: number): Buffer {
    this.flush();
    return this.scrollback.tail(maxBytes);
  }

  /** Hangs up the process group, then kills it after `graceMs`; resolves when the PTY is gone. */
  async close(graceMs = 500): Promise<void> {
    if (!this.exit) {
      killGroup(this.pid, "SIGHUP");
      this.resumePty(); // let the final output drain so exit is reported
      const timer = setTimeout(() => killGroup(this.pid, "SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    killGroup(this.pid, "SIGKILL"); // stragglers that ignored SIGHUP
  }

  whenExited(): Promise<void> {
    return this.exited;
  }

  checkFlow(): void {
    if (this.exit) return;
    const attachments = [...this.attachments];
    if (!this.paused && attachments.some((a) => a.overWatermark())) {
      this.paused = true;
      this.pty.pause();
      // Backlogs are re-checked too: one can drop with no write to report it (a WebSocket whose
      // client stopped reading and then sent its close counts as no backlog from then on).
      this.pausedPoll = setInterval(() => {
        if (!isAlive(this.pid)) this.resumePty();
        else this.checkFlow();
      }, PAUSED_POLL_MS);
    } else if (this.paused && attachments.every((a) => a.underWatermark())) {
      this.resumePty();
    }
  }

  private resumePty(): void {
    this.stopPausedPoll();
    if (!this.paused) return;
    this.paused = false;
    this.pty.resume();
  }

  private stopPausedPoll(): void {
    if (this.pausedPoll) clearInterval(this.pausedPoll);
    this.pausedPoll = undefined;
  }

  /**
   * Interactive output (a keystroke's echo, a prompt) goes out on the next event-loop turn, with
   * no timer. Once a turn brings STREAM_BYTES or more, the session switches to streaming: frames
   * then go out every BATCH_MS or at BATCH_BYTES, until a window brings less than STREAM_BYTES.
   */
  private onData(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= BATCH_BYTES) this.flush();
    else if (this.streaming) this.flushTimer ??= setTimeout(() => this.endWindow(), BATCH_MS);
    else this.flushScheduled ??= setImmediate(() => this.endTurn());
  }

  private endTurn(): void {
    this.flushScheduled = undefined;
    const n = this.pendingBytes;
    this.flush();
    if (n >= STREAM_BYTES) {
      this.setStreaming(true);
      this.flushTimer ??= setTimeout(() => this.endWindow(), BATCH_MS);
    }
  }

  private endWindow(): void {
    this.flushTimer = undefined;
    const n = this.pendingBytes;
    this.flush();
    if (n >= STREAM_BYTES) this.flushTimer = setTimeout(() => this.endWindow(), BATCH_MS);
    else this.setStreaming(false);
  }

  /** The mirror parses only while output does not stream (mirror.ts). */
  private setStreaming(on: boolean): void {
    this.streaming = on;
    this.mirror.hold(on);
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    const frame = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.scrollback.write(frame);
    for (const a of this.attachments) a.output(frame);
    this.mirror.write(frame);
    this.checkFlow();
  }
}

/** Opens the PTY's slave side (see the header); undefined if it cannot be opened. */
function holdSlave(pty: IPty): number | undefined {
  const name = (pty as unknown as { ptsName?: string }).ptsName;
  if (!name) return undefined;
  try {
    return openSync(name, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    return undefined;
  }
}

export function clamp(n: number): number {
  return Math.min(1000, Math.max(1, Math.floor(n) || 1));
}
