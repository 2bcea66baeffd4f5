/**
 * A real terminal emulator for tests: @xterm/headless, which answers queries (device attributes,
 * cursor position, ...) the way a user's terminal does. Whatever it answers goes to `reply`, as a
 * terminal's answers go to whatever reads it.
 */
import { createRequire } from "node:module";
import type { Terminal as TerminalType } from "@xterm/headless";

const require = createRequire(import.meta.url);
const { Terminal } = require("@xterm/headless") as typeof import("@xterm/headless");

export class Emulator {
  readonly term: TerminalType;
  /** Everything the emulator answered. */
  replies = "";

  constructor(cols: number, rows: number, reply: (data: string) => void = () => {}) {
    this.term = new Terminal({ cols, rows, scrollback: 5000, allowProposedApi: true });
    this.term.onData((d) => {
      this.replies += d;
      reply(d);
    });
  }

  /** Resolves once the emulator has parsed `data` (and answered what it asks). */
  write(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve) => this.term.write(data, resolve));
  }

  /** The active buffer's text (scrollback and screen), one line per row, trailing blanks trimmed. */
  text(): string {
    const b = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? "");
    return lines.join("\n");
  }

  /** Which buffer is shown: "alternate" while a full-screen program (vi, top) runs. */
  get bufferType(): "normal" | "alternate" {
    return this.term.buffer.active.type;
  }
}
