/**
 * Bounded byte buffer that keeps the most recent `capacity` bytes and counts everything written, so
 * readers can address output by absolute offset (bytes since the start).
 */
export class RingBuffer {
  private readonly buf: Buffer;
  private start = 0; // index of the oldest byte in buf
  private length = 0;
  /** Bytes ever written. */
  total = 0;

  constructor(readonly capacity: number) {
    // Unzeroed: pages are committed only as output arrives, so idle terminals stay small. Bytes are
    // only ever read back after being written.
    this.buf = Buffer.allocUnsafeSlow(capacity);
  }

  /** Absolute offset of the oldest byte still kept. */
  get firstOffset(): number {
    return this.total - this.length;
  }

  get size(): number {
    return this.length;
  }

  write(data: Uint8Array): void {
    this.total += data.length;
    const cap = this.capacity;
    if (data.length >= cap) {
      this.buf.set(data.subarray(data.length - cap));
      this.start = 0;
      this.length = cap;
      return;
    }
    const end = (this.start + this.length) % cap;
    const first = Math.min(data.length, cap - end);
    this.buf.set(data.subarray(0, first), end);
    if (first < data.length) this.buf.set(data.subarray(first), 0);
    const overflow = this.length + data.length - cap;
    if (overflow > 0) {
      this.start = (this.start + overflow) % cap;
      this.length = cap;
    } else {
      this.length += data.length;
    }
  }

  /** Copies bytes from absolute `offset` (clamped to what is kept), at most `max`. */
  read(offset: number, max: number): { data: Buffer; offset: number } {
    const from = Math.max(offset, this.firstOffset);
    const n = Math.max(0, Math.min(max, this.total - from));
    const out = Buffer.alloc(n);
    const cap = this.capacity;
    const at = (this.start + (from - this.firstOffset)) % cap;
    const first = Math.min(n, cap - at);
    this.buf.copy(out, 0, at, at + first);
    if (first < n) this.buf.copy(out, first, 0, n - first);
    return { data: out, offset: from };
  }

  /** The last `max` bytes kept (all when max is 0). */
  tail(max = 0): Buffer {
    const n = max > 0 ? Math.min(max, this.length) : this.length;
    return this.read(this.total - n, n).data;
  }
}
