/**
 * Reads exact byte counts from a stream of chunks (an RPC's client stream, an HTTP body), holding
 * no more than the chunks it was handed and has not given out yet: constant memory, whatever the
 * stream's length.
 */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private parts: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or fewer when the stream ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && !this.ended) await this.pull();
    return this.take(Math.min(n, this.buffered));
  }

  /** At least one and at most `max` bytes, or undefined at the end of the stream. */
  async readSome(max: number): Promise<Buffer | undefined> {
    while (this.buffered === 0 && !this.ended) await this.pull();
    if (this.buffered === 0) return undefined;
    return this.take(Math.min(max, this.buffered));
  }

  /** Discards `n` bytes; false when the stream ended first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      const got = await this.readSome(Math.min(left, 1 << 20));
      if (!got) return false;
      left -= got.length;
    }
    return true;
  }

  private async pull(): Promise<void> {
    const next = await this.it.next();
    if (next.done) {
      this.ended = true;
      return;
    }
    const v = next.value;
    if (v.length === 0) return;
    this.parts.push(Buffer.from(v.buffer, v.byteOffset, v.length));
    this.buffered += v.length;
  }

  private take(n: number): Buffer {
    this.position += n;
    this.buffered -= n;
    const first = this.parts[0];
    if (first && first.length === n) {
      this.parts.shift();
      return first;
    }
    if (first && first.length > n) {
      this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = this.parts[0];
      const use = Math.min(p.length, n - at);
      p.copy(out, at, 0, use);
      at += use;
      if (use === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(use);
    }
    return out;
  }
}

/** Regroups a stream of buffers into chunks of about `size` bytes (the last one may be shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const b of source) {
    if (b.length >= size && length === 0) {
      yield Buffer.from(b.buffer, b.byteOffset, b.length);
      continue;
    }
    parts.push(Buffer.from(b.buffer, b.byteOffset, b.length));
    length += b.length;
    if (length >= size) {
      yield Buffer.concat(parts, length);
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}
