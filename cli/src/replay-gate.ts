/**
 * Keeps the local terminal's answers to a reattach replay out of the remote shell. While the CLI
 * writes the replay, whatever the local terminal sends (answers to queries in the replayed output,
 * keys pressed meanwhile) is dropped. After the replay the gate asks the terminal for its device
 * attributes (DA1, `ESC [ c`, which every terminal answers): terminals answer in order, so once that
 * answer arrives every answer to the replay has too, and input flows again from the byte after it.
 * A terminal that never answers opens the gate after `timeoutMs`.
 */

/** DA1 answer: `ESC [ ? <params> c`. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching a terminal's escape sequence is the point.
const DA1_ANSWER = /\x1b\[\?[\d;]*c/;
/** The most of a split answer kept between chunks. */
const MAX_PARTIAL = 64;

export class ReplayGate {
  private state: "replaying" | "asking" | "open";
  private partial = "";
  private timer: NodeJS.Timeout | undefined;

  /** `closed` when a replay is coming; an open gate passes everything. */
  constructor(
    private readonly ask: (query: string) => void,
    closed: boolean,
    private readonly timeoutMs = 2000,
  ) {
    this.state = closed ? "replaying" : "open";
  }

  /** The replay was written: ask for DA1 and wait for the answer. */
  replayed(): void {
    if (this.state !== "replaying") return;
    this.state = "asking";
    this.ask("\x1b[c");
    this.timer = setTimeout(() => this.open(), this.timeoutMs);
  }

  /** What of this input chunk may go to the remote terminal. */
  pass(chunk: Buffer): Buffer {
    if (this.state === "open") return chunk;
    if (this.state === "replaying") return chunk.subarray(0, 0);
    const text = this.partial + chunk.toString("latin1");
    const m = DA1_ANSWER.exec(text);
    if (!m) {
      const esc = text.lastIndexOf("\x1b");
      this.partial = esc >= 0 && text.length - esc <= MAX_PARTIAL ? text.slice(esc) : "";
      return chunk.subarray(0, 0);
    }
    this.open();
    return Buffer.from(text.slice(m.index + m[0].length), "latin1");
  }

  dispose(): void {
    clearTimeout(this.timer);
  }

  private open(): void {
    clearTimeout(this.timer);
    this.state = "open";
    this.partial = "";
  }
}
