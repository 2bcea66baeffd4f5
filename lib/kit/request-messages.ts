/**
 * A gRPC request body's messages in one iterator: what connect's handler does with four
 * (transformPrepend, transformSplitEnvelope, transformDecompressEnvelope, transformParseEnvelope,
 * each a tslib-emulated async generator, under one more for `pipe`). Each of those allocates its
 * promises and results for every message; on a terminal's Attach a message is a keystroke, and
 * that allocation set how often the runner's small young generation was collected, which is what
 * the slowest echoes waited for. The errors are connect's, with its codes and messages.
 */
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Compression, compressedFlag, envelopeDecompress, type Serialization } from "@connectrpc/connect/protocol";

interface Envelope {
  flags: number;
  data: Uint8Array;
}

/** Splits a byte stream into envelopes; each byte is copied once, into its message's own array. */
export class EnvelopeSplitter {
  private chunks: Uint8Array[] = [];
  private readonly out: Envelope[] = [];
  private bytes = 0;
  /** Bytes needed before the next envelope can be read: its header, then header and message. */
  private need = 5;

  constructor(private readonly readMaxBytes: number) {}

  /** Bytes of an incomplete envelope held back. */
  get leftover(): number {
    return this.bytes;
  }

  /** The envelopes that `chunk` completes, in order, in an array that the next call reuses. */
  split(chunk: Uint8Array): Envelope[] {
    const out = this.out;
    out.length = 0;
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (this.bytes < this.need) return out;
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
    this.chunks.length = 0;
    let at = 0;
    for (;;) {
      if (buf.byteLength - at < 5) {
        this.need = 5;
        break;
      }
      // Big-endian uint32, read without a DataView (one less object per keystroke).
      const size = buf[at + 1] * 0x1000000 + ((buf[at + 2] << 16) | (buf[at + 3] << 8) | buf[at + 4]);
      if (size > this.readMaxBytes) {
        throw new ConnectError(
          `message size ${size} is larger than configured readMaxBytes ${this.readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      if (buf.byteLength - at - 5 < size) {
        this.need = 5 + size;
        break;
      }
      out.push({ flags: buf[at], data: buf.slice(at + 5, at + 5 + size) });
      at += 5 + size;
    }
    if (at < buf.byteLength) this.chunks.push(buf.subarray(at));
    this.bytes = buf.byteLength - at;
    return out;
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The request messages in `body`. `check` runs before the first is read (connect raises the
 * negotiation's and the timeout's errors there, so they reach the client as trailer statuses).
 * An iterator, not an async generator: it runs for every keystroke of a terminal's Attach, and a
 * generator's promises and results per message were the largest share of what the runner allocated
 * for one. It keeps a generator's contract: one read at a time, the body closed when the reader
 * stops early or a message fails, and done after that.
 */
export function requestMessages(
  body: AsyncIterable<Uint8Array>,
  check: () => void,
  readMaxBytes: number,
  compression: Compression | null,
  serialization: Serialization<Message>,
  /** A parser for common encodings that answers undefined for the rest (bytes-parts.ts). */
  parseFast?: (data: Uint8Array) => Message | undefined,
): AsyncIterableIterator<Message> {
  return new MessageReader(body, check, readMaxBytes, compression, serialization, parseFast);
}

type Step = IteratorResult<Message> | Promise<IteratorResult<Message>>;

class MessageReader implements AsyncIterableIterator<Message> {
  private readonly splitter: EnvelopeSplitter;
  /** The body's chunks, opened by the first read once `check` passed. */
  private chunks: AsyncIterator<Uint8Array> | undefined;
  /** The body ended or failed: it is not closed again. */
  private chunksOver = false;
  private envelopes: Envelope[] = [];
  private nextEnvelope = 0;
  private over = false;
  /** The read in progress: a read made meanwhile is answered after it. */
  private reading: Promise<IteratorResult<Message>> | undefined;
  private readonly readAfter = () => this.next();
  private readonly returnAfter = () => this.return();
  private readonly afterChunk = (r: IteratorResult<Uint8Array>) => this.afterRead(r) ?? this.moreChunks();
  private readonly chunksFailed = (e: unknown) => {
    this.reading = undefined;
    this.chunksOver = true;
    throw this.fail(e);
  };

  constructor(
    private readonly body: AsyncIterable<Uint8Array>,
    private readonly check: () => void,
    private readonly readMaxBytes: number,
    private readonly compression: Compression | null,
    private readonly serialization: Serialization<Message>,
    private readonly parseFast?: (data: Uint8Array) => Message | undefined,
  ) {
    this.splitter = new EnvelopeSplitter(readMaxBytes);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.reading) return this.reading.then(this.readAfter, this.readAfter);
    if (this.over) return Promise.resolve(DONE);
    let step: Step;
    try {
      if (!this.chunks) {
        this.check();
        this.chunks = this.body[Symbol.asyncIterator]();
      }
      step = this.take();
    } catch (e) {
      return Promise.reject(this.fail(e));
    }
    return step instanceof Promise ? step : Promise.resolve(step);
  }

  return(): Promise<IteratorResult<Message>> {
    // As a generator queues them: after the read in progress.
    if (this.reading) return this.reading.then(this.returnAfter, this.returnAfter);
    if (this.over) return Promise.resolve(DONE);
    this.over = true;
    return this.closeChunks().then(() => DONE);
  }

  throw(e: unknown): Promise<IteratorResult<Message>> {
    if (this.reading) {
      const again = () => this.throw(e);
      return this.reading.then(again, again);
    }
    if (this.over) return Promise.reject(e);
    this.over = true;
    return this.closeChunks().then(() => Promise.reject(e));
  }

  /** The next message: from an envelope already split, or once more of the body came. */
  private take(): Step {
    if (this.nextEnvelope < this.envelopes.length) return this.message(this.envelopes[this.nextEnvelope++]);
    // `reading` is the promise the caller holds until it settles; reads and returns made meanwhile
    // are queued on it, so they come after it, in order.
    this.reading = this.chunks!.next().then(this.afterChunk, this.chunksFailed);
    return this.reading;
  }

  /** What a read of the body gives: a message, the end, or undefined if it completed no envelope. */
  private afterRead(r: IteratorResult<Uint8Array>): Step | undefined {
    try {
      if (r.done) {
        this.reading = undefined;
        this.chunksOver = true;
        this.over = true;
        if (this.splitter.leftover > 0) {
          throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
        }
        return DONE;
      }
      this.envelopes = this.splitter.split(r.value);
      this.nextEnvelope = 0;
      if (this.envelopes.length === 0) return undefined;
      this.reading = undefined;
      return this.message(this.envelopes[this.nextEnvelope++]);
    } catch (e) {
      this.reading = undefined;
      throw this.fail(e);
    }
  }

  /**
   * Reads on until a chunk completes an envelope. One promise for the whole wait: one per chunk,
   * each settled by the next, would be held in a chain as long as a message trickles in.
   */
  private moreChunks(): Promise<IteratorResult<Message>> {
    return new Promise((resolve, reject) => {
      const failed = (e: unknown) => {
        try {
          this.chunksFailed(e);
        } catch (error) {
          reject(error);
        }
      };
      const more = (r: IteratorResult<Uint8Array>) => {
        try {
          const step = this.afterRead(r);
          if (step === undefined) this.chunks!.next().then(more, failed);
          else resolve(step);
        } catch (e) {
          reject(e);
        }
      };
      this.chunks!.next().then(more, failed);
    });
  }

  private message(envelope: Envelope): Step {
    if ((envelope.flags & compressedFlag) !== compressedFlag) return { value: this.parse(envelope.data), done: false };
    this.reading = envelopeDecompress(envelope, this.compression, this.readMaxBytes).then(
      (d) => {
        this.reading = undefined;
        return { value: this.parse(d.data), done: false };
      },
      (e) => {
        this.reading = undefined;
        throw this.fail(e);
      },
    );
    return this.reading;
  }

  private parse(data: Uint8Array): Message {
    try {
      return this.parseFast?.(data) ?? this.serialization.parse(data);
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** Ends the reader after an error (closing the body, as a generator's loop does) and gives the error back. */
  private fail(e: unknown): unknown {
    if (!this.over) {
      this.over = true;
      void this.closeChunks().catch(() => {});
    }
    return e;
  }

  private closeChunks(): Promise<unknown> {
    if (this.chunksOver || !this.chunks) return Promise.resolve();
    this.chunksOver = true;
    return this.chunks.return?.() ?? Promise.resolve();
  }
}
