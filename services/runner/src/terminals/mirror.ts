/**
 * A terminal's mirror (after VS Code's pty host): a headless xterm fed with everything the PTY
 * outputs and sized with it, so it holds what a client's screen shows. A reattach replays its
 * serialization (scrollback, screen, cursor and modes such as the alternate screen) instead of raw
 * output: raw output holds queries (device attributes, cursor position, colours) that the client's
 * emulator would answer again, and those answers would reach the shell as typed input. The mirror's
 * own answers to them are dropped (nothing listens to its onData).
 *
 * xterm parses in timer slices behind the writes; `backlog` counts the bytes not yet parsed, so the
 * session can pause a PTY that outruns the parser. Resizes and snapshots are queued behind the
 * writes, so each applies at its place in the output.
 */
import { createRequire } from "node:module";
import type { SerializeAddon as SerializeAddonType } from "@xterm/addon-serialize";
import type { ITerminalAddon, Terminal as TerminalType } from "@xterm/headless";

// Both are webpack bundles marked __esModule: neither a default nor a named import works under both
// Node's ESM loader and tsx's CommonJS transform (mocha), so they are required.
const require = createRequire(import.meta.url);
const { Terminal } = require("@xterm/headless") as typeof import("@xterm/headless");
const { SerializeAddon } = require("@xterm/addon-serialize") as typeof import("@xterm/addon-serialize");

/** Lines a replay keeps above the screen. */
export const MIRROR_SCROLLBACK_LINES = 1000;

export class TerminalMirror {
  private readonly term: TerminalType;
  private readonly serializer: SerializeAddonType = new SerializeAddon();
  /** Bytes written but not yet parsed. */
  backlog = 0;

  constructor(
    cols: number,
    rows: number,
    private readonly onParsed: () => void,
  ) {
    this.term = new Terminal({ cols, rows, scrollback: MIRROR_SCROLLBACK_LINES, allowProposedApi: true });
    // The addon's types name the browser build's Terminal; it uses only what both builds share.
    this.term.loadAddon(this.serializer as unknown as ITerminalAddon);
  }

  write(data: Uint8Array): void {
    this.backlog += data.length;
    this.term.write(data, () => {
      this.backlog -= data.length;
      this.onParsed();
    });
  }

  resize(cols: number, rows: number): void {
    this.term.write("", () => this.term.resize(cols, rows));
  }

  /** The serialization once everything written so far is parsed (and nothing written later). */
  snapshot(): Promise<Buffer> {
    return new Promise((resolve) => this.term.write("", () => resolve(Buffer.from(this.serializer.serialize()))));
  }
}
