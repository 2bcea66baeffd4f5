/**
 * A gRPC request body's messages in one generator: what connect's handler does with four
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
  private bytes = 0;
  /** Bytes needed before the next envelope can be read: its header, then header and message. */
  private need = 5;

  constructor(private readonly readMaxBytes: number) {}

  /** Bytes of an incomplete envelope held back. */
  get leftover(): number {
    return this.bytes;
  }

  /** The envelopes that `chunk` completes, in order. */
  split(chunk: Uint8Array): Envelope[] {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    const out: Envelope[] = [];
    if (this.bytes < this.need) return out;
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let at = 0;
    for (;;) {
      if (buf.byteLength - at < 5) {
        this.need = 5;
        break;
      }
      const size = view.getUint32(at + 1);
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
    const rest = buf.subarray(at);
    this.chunks = rest.byteLength > 0 ? [rest] : [];
    this.bytes = rest.byteLength;
    return out;
  }
}

/**
 * The request messages in `body`. `check` runs before the first is read (connect raises the
 * negotiation's and the timeout's errors there, so they reach the client as trailer statuses).
 */
export async function* requestMessages(
  body: AsyncIterable<Uint8Array>,
  check: () => void,
  readMaxBytes: number,
  compression: Compression | null,
  serialization: Serialization<Message>,
  /** A parser for common encodings that answers undefined for the rest (bytes-parts.ts). */
  parseFast?: (data: Uint8Array) => Message | undefined,
): AsyncGenerator<Message> {
  check();
  const splitter = new EnvelopeSplitter(readMaxBytes);
  for await (const chunk of body) {
    for (const envelope of splitter.split(chunk)) {
      const data =
        (envelope.flags & compressedFlag) === compressedFlag
          ? (await envelopeDecompress(envelope, compression, readMaxBytes)).data
          : envelope.data;
      yield parseFast?.(data) ?? serialization.parse(data);
    }
  }
  if (splitter.leftover > 0) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}
