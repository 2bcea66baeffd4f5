/**
 * Output a terminal's mirror has not parsed yet, copied into one buffer the queue owns, with the
 * resizes marked at their places in it.
 *
 * A copy, not the frames themselves: in a flood the mirror keeps about SKIP_BYTES waiting for tens of
 * milliseconds, longer than the runner's 1 MiB young generation lets anything stay young. Held by
 * reference, every frame was promoted, and its memory (outside the JS heap) came back only with a
 * full collection, which V8 ran every ~10 MB of output (22 against 4 over 240 MB through the
 * WebSocket bridge; 2–3 CPU s/GB of the runner). Copied, a frame dies in the scavenge after its send,
 * and the queue's own buffer is promoted once and reused, in place, for the whole flood.
 */

/** A resize at absolute offset `at` (bytes ever pushed): it applies before the byte at `at`. */
interface Mark {
  at: number;
  cols: number;
  rows: number;
}

export type QueueEntry = { data: Buffer } | { cols: number; rows: number };

/** The least a queue allocates, and the most it keeps allocated while empty. */
const MIN_CAPACITY = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class OutputQueue {
  private buf: Buffer = EMPTY;
  /** Waiting bytes are buf[start, end). */
  private start = 0;
  private end = 0;
  /** Absolute offset of buf[start]. */
  private head = 0;
  private marks: Mark[] = [];

  /** Bytes waiting. */
  get bytes(): number {
    return this.end - this.start;
  }

  get empty(): boolean {
    return this.end === this.start && this.marks.length === 0;
  }

  /** Bytes this queue holds allocated (for tests: an idle queue gives its buffer back). */
  get capacity(): number {
    return this.buf.length;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.end + data.length > this.buf.length) this.makeRoom(data.length);
    this.buf.set(data, this.end);
    this.end += data.length;
  }

  resize(cols: number, rows: number): void {
    this.marks.push({ at: this.head + this.bytes, cols, rows });
  }

  /** The resize due before the next byte, removed from the queue; undefined if bytes come first. */
  shiftResize(): { cols: number; rows: number } | undefined {
    const m = this.marks[0];
    if (!m || m.at > this.head) return undefined;
    this.marks.shift();
    return { cols: m.cols, rows: m.rows };
  }

  /** How many bytes `take` would give: up to `max`, and not past the next resize. */
  available(max: number): number {
    const limit = this.marks.length > 0 ? this.marks[0].at - this.head : this.bytes;
    return Math.min(max, limit);
  }

  /** Removes the next `n` waiting bytes (n ≤ available) and returns them as a buffer of their own. */
  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.start, this.start + n);
    this.advance(n);
    return out;
  }

  /**
   * Everything waiting, in order, leaving the queue empty. The data entries are views of the
   * queue's buffer, which the queue then lets go of, so nothing later overwrites them.
   */
  takeAll(): QueueEntry[] {
    const entries: QueueEntry[] = [];
    let at = this.head;
    for (const m of this.marks) {
      if (m.at > at) entries.push({ data: this.view(at, m.at) });
      entries.push({ cols: m.cols, rows: m.rows });
      at = Math.max(at, m.at);
    }
    const end = this.head + this.bytes;
    if (end > at) entries.push({ data: this.view(at, end) });
    this.head = end;
    this.marks = [];
    this.buf = EMPTY;
    this.start = this.end = 0;
    return entries;
  }

  /**
   * Drops all but the newest `keep` bytes and returns them as a view that is valid until the queue
   * next changes. The last resize among them stays, in front of what is kept (the size they left);
   * the ones after them stay at their places.
   */
  dropOldest(keep: number): Buffer {
    const n = Math.max(0, this.bytes - keep);
    const dropped = this.buf.subarray(this.start, this.start + n);
    const cut = this.head + n;
    let size: { cols: number; rows: number } | undefined;
    while (this.marks.length > 0 && this.marks[0].at <= cut) {
      const m = this.marks.shift()!;
      size = { cols: m.cols, rows: m.rows };
    }
    this.start += n;
    this.head = cut;
    if (size) this.marks.unshift({ at: cut, ...size });
    return dropped;
  }

  /** Puts `data` in front of what waits (after a resize due at the head). */
  unshift(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.start < data.length) {
      const waiting = this.buf.subarray(this.start, this.end);
      const next = Buffer.allocUnsafeSlow(Math.max(MIN_CAPACITY, 2 * (data.length + waiting.length)));
      waiting.copy(next, data.length);
      this.buf = next;
      this.start = data.length;
      this.end = data.length + waiting.length;
    }
    this.start -= data.length;
    this.buf.set(data, this.start);
    // The resize due at the old head comes before these bytes: it moves to the new head.
    for (const m of this.marks) if (m.at === this.head) m.at -= data.length;
    this.head -= data.length;
  }

  /** The waiting bytes from absolute offset `from` to `to`, as a view. */
  private view(from: number, to: number): Buffer {
    return this.buf.subarray(this.start + (from - this.head), this.start + (to - this.head));
  }

  private advance(n: number): void {
    this.start += n;
    this.head += n;
    if (this.start < this.end) return;
    this.start = this.end = 0;
    // An idle terminal keeps a small buffer at most; a flood's is given back once it is parsed.
    if (this.buf.length > MIN_CAPACITY) this.buf = EMPTY;
  }

  /** Room for `n` more bytes: the waiting ones moved to the front, or a larger buffer. */
  private makeRoom(n: number): void {
    const waiting = this.bytes;
    if (waiting + n <= this.buf.length && this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      // Unpooled and unzeroed: the queue's buffer lives as long as the flood, and only written
      // bytes are ever read.
      const next = Buffer.allocUnsafeSlow(Math.max(MIN_CAPACITY, 2 * (waiting + n)));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
    }
    this.start = 0;
    this.end = waiting;
  }
}
