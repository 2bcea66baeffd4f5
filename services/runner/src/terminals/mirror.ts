/**
 * A terminal's mirror (after VS Code's pty host): a headless xterm fed with what the PTY outputs
 * and sized with it, so it holds what a client's screen shows. A reattach replays its serialization
 * (scrollback, screen, cursor and modes such as the alternate screen) instead of raw output: raw
 * output holds queries (device attributes, cursor position, colours) that the client's emulator
 * would answer again, and those answers would reach the shell as typed input. The mirror's own
 * answers to them are dropped (nothing listens to its onData).
 *
 * Emulating every byte costs several times the CPU of carrying it to the clients (xterm parses
 * about 30 MB/s here, 30 CPU s/GB), so the mirror never holds the terminal back and spends a
 * bounded share of the CPU: output is fed to xterm one FEED_BYTES slice at a time, at most
 * PARSE_RATE bytes a second after a burst of PARSE_BURST (an editor or a `top` redraws far less;
 * at 2 MiB/s the mirror took a third of the runner's JavaScript time in a flood). While the session
 * streams (session.ts: 1 KiB or more per 5 ms window) it parses nothing, since a flood's screens are
 * drawn over, and catches up once the output settles: a 200 MB flood used to spend its burst and
 * rate on output it then scrolled away (about 1 CPU s/GB of the runner's). When more than
 * SKIP_BYTES wait (a flood: `cat` of a big file, a build log) it skips to the newest KEEP_BYTES,
 * which hold far more than the scrollback it replays. The modes the skipped output set (DECSET and
 * DECRST such as the alternate screen, the scroll region, the keypad mode, character sets and the
 * last SGR) are applied first (skipped-modes.ts), so the screen it then draws is the one the
 * clients see. Lost are only what the skipped output drew and nothing after it redrew: rows outside
 * a scroll region, and the main screen as it was when the output switched to the alternate one. A snapshot catches up first: it feeds what waits (at most SKIP_BYTES) and serializes.
 * Resizes are queued with the output, so each applies at its place in it. What waits is a copy
 * (output-queue.ts): frames held by reference through a flood cost the runner full collections.
 */

import type { SerializeAddon as SerializeAddonType } from "@xterm/addon-serialize";
import type { ITerminalAddon, Terminal as TerminalType } from "@xterm/headless";
import { OutputQueue, type QueueEntry } from "./output-queue.js";
import { modesOf } from "./skipped-modes.js";

// Both are webpack bundles marked __esModule: Node's ESM loader (and esbuild's bundles, which follow
// it) put their exports on `default`, tsx's CommonJS transform (mocha) gives them as named exports.
const commonJs = <T>(ns: T): T => (ns as T & { default?: T }).default ?? ns;

let xterm:
  | { Terminal: typeof import("@xterm/headless").Terminal; SerializeAddon: typeof SerializeAddonType }
  | undefined;

/**
 * Loads xterm, which a mirror needs: the terminal registry awaits it before the first terminal, so
 * a fresh runner answers without evaluating it (~30 ms of its start) and one that never opens a
 * terminal (an agent's exec-only repl) never holds it.
 */
export async function loadXterm(): Promise<void> {
  if (xterm) return;
  const [headless, serialize] = await Promise.all([import("@xterm/headless"), import("@xterm/addon-serialize")]);
  xterm = { Terminal: commonJs(headless).Terminal, SerializeAddon: commonJs(serialize).SerializeAddon };
}

/** Lines a replay keeps above the screen. */
export const MIRROR_SCROLLBACK_LINES = 1000;
/** Output handed to xterm at once. */
export const FEED_BYTES = 64 * 1024;
/** Output waiting beyond this is a flood: the mirror skips ahead. */
export const SKIP_BYTES = 1024 * 1024;
/** What a skip keeps: the newest output, many screens more than the scrollback even of wide lines. */
export const KEEP_BYTES = 512 * 1024;
/** Output parsed per second, sustained, and at once. What waits is parsed when a snapshot asks. */
export const PARSE_RATE = 256 * 1024;
export const PARSE_BURST = 4 * 1024 * 1024;

export class TerminalMirror {
  private readonly term: TerminalType;
  private readonly serializer: SerializeAddonType;
  private readonly queue = new OutputQueue();
  /** xterm is parsing what it was given; the next slice waits for it. */
  private busy = false;
  /** Output streams: parsing waits (hold). */
  private held = false;
  /** The parse budget (a token bucket) and when it was last topped up. */
  private budget = PARSE_BURST;
  private budgetAt = performance.now();
  private budgetTimer: NodeJS.Timeout | undefined;
  /** Output skipped over, and handed to xterm, so far (for tests and metrics). */
  skippedBytes = 0;
  parsedBytes = 0;

  constructor(cols: number, rows: number) {
    if (!xterm) throw new Error("TerminalMirror before loadXterm()");
    this.serializer = new xterm.SerializeAddon();
    this.term = new xterm.Terminal({ cols, rows, scrollback: MIRROR_SCROLLBACK_LINES, allowProposedApi: true });
    // The addon's types name the browser build's Terminal; it uses only what both builds share.
    this.term.loadAddon(this.serializer as unknown as ITerminalAddon);
  }

  /**
   * While output streams (session.ts), parsing waits for it to settle: a flood's screens are drawn
   * over, so what it parsed would mostly be thrown away. At most SKIP_BYTES wait meanwhile.
   */
  hold(on: boolean): void {
    this.held = on;
    if (!on) this.feed();
  }

  write(data: Uint8Array): void {
    if (data.length === 0) return;
    this.queue.push(data);
    if (this.queue.bytes > SKIP_BYTES) this.skipAhead();
    this.feed();
  }

  resize(cols: number, rows: number): void {
    this.queue.resize(cols, rows);
    this.feed();
  }

  /** The serialization once everything written so far is parsed (and nothing written later). */
  snapshot(): Promise<Buffer> {
    const entries = this.queue.takeAll();
    return new Promise((resolve) => {
      for (const e of entries) this.apply(e);
      this.busy = true;
      this.term.write("", () => {
        resolve(Buffer.from(this.serializer.serialize()));
        this.busy = false;
        this.feed();
      });
    });
  }

  /** Hands xterm the next slice once it parsed the last one. */
  private feed(): void {
    while (!this.busy && !this.held && !this.queue.empty) {
      const size = this.queue.shiftResize();
      if (size) {
        this.term.resize(size.cols, size.rows);
        continue;
      }
      const n = this.queue.available(FEED_BYTES);
      if (!this.spend(n)) return;
      this.parsedBytes += n;
      this.busy = true;
      // A buffer of its own: xterm parses it later, and the queue reuses its space.
      this.term.write(this.queue.take(n), () => {
        this.busy = false;
        this.feed();
      });
    }
  }

  /** Takes `bytes` from the parse budget, or false and a timer that feeds again once it has them. */
  private spend(bytes: number): boolean {
    const now = performance.now();
    this.budget = Math.min(PARSE_BURST, this.budget + ((now - this.budgetAt) / 1000) * PARSE_RATE);
    this.budgetAt = now;
    if (this.budget >= bytes) {
      this.budget -= bytes;
      return true;
    }
    this.budgetTimer ??= setTimeout(
      () => {
        this.budgetTimer = undefined;
        this.feed();
      },
      Math.ceil(((bytes - this.budget) / PARSE_RATE) * 1000),
    );
    this.budgetTimer.unref();
    return false;
  }

  /** Queues an entry into xterm behind what it was given (xterm keeps the order). */
  private apply(e: QueueEntry): void {
    if ("data" in e) {
      this.parsedBytes += e.data.length;
      this.term.write(e.data);
    } else this.term.write("", () => this.term.resize(e.cols, e.rows));
  }

  /** Drops all but the newest KEEP_BYTES waiting, keeping the modes and the size the dropped part set. */
  private skipAhead(): void {
    const dropped = this.queue.dropOldest(KEEP_BYTES);
    this.skippedBytes += dropped.length;
    // Before the queue changes again: `dropped` is a view of its buffer.
    this.queue.unshift(modesOf([dropped]));
  }
}
