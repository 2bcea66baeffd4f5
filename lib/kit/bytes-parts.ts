/**
 * A streamed message's encoding in parts, so its one large `bytes` field (terminal output, a
 * process's output, a file's chunk) goes to the socket as it is instead of being copied twice, once
 * by protobuf-es's `toBinary` (`finish()` joins the parts) and once more by connect's envelope.
 *
 * The parts are the bytes connect would send: a small array (the 5-byte envelope header, the fields
 * numbered below the large one, its tag and length), the field's own bytes, then the fields numbered
 * above it, if any. Messages with unknown fields take the ordinary path.
 *
 * A `bytes` field in a oneof that holds all of its message's fields (a terminal's or a process's
 * output frame) is the whole message when it is set, so its envelope is framed here at any size, with
 * no `toBinary`: under MIN_PART_BYTES as one copy. A keystroke's echo is such a frame, and
 * `toBinary`'s writer and reflection allocated several times what the frame holds.
 */
import type { BinaryWriteOptions, DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";

/** Below this a copy costs less than the extra write. */
export const MIN_PART_BYTES = 4096;

type Msg = Record<string, unknown>;

interface BytesField {
  number: number;
  /** The field's bytes in `m` (undefined when it is not the set member of its oneof). */
  read(m: Msg): Uint8Array | undefined;
  /** `m` without the field, for encoding everything else. */
  without(m: Msg): Msg;
  /** Whether, when set, it is its message's only field (its oneof holds them all). */
  alone: boolean;
}

/** The singular `bytes` fields of `desc`, on their own or as a oneof's member. */
function bytesFields(desc: DescMessage): BytesField[] {
  const isBytes = (f: DescField) => f.fieldKind === "scalar" && f.scalar === ScalarType.BYTES;
  return desc.fields.filter(isBytes).map((f): BytesField => {
    const oneof = f.oneof;
    if (oneof) {
      return {
        number: f.number,
        alone: desc.fields.every((other) => other.oneof === oneof),
        read: (m) => {
          const o = m[oneof.localName] as { case?: string; value?: unknown };
          return o.case === f.localName ? (o.value as Uint8Array) : undefined;
        },
        without: (m) => ({ ...m, [oneof.localName]: { case: undefined } }),
      };
    }
    // Implicit presence skips an empty value; explicit presence (proto2, `optional`) skips undefined.
    const absent = f.presence === FeatureSet_FieldPresence.IMPLICIT ? new Uint8Array(0) : undefined;
    return {
      number: f.number,
      alone: false,
      read: (m) => m[f.localName] as Uint8Array | undefined,
      without: (m) => ({ ...m, [f.localName]: absent }),
    };
  });
}

export type PartsEncoder = (message: Msg) => Uint8Array[] | undefined;

/**
 * An encoder for `desc`'s messages: the envelope in parts when a `bytes` field holds at least
 * MIN_PART_BYTES or is the message's only field, undefined otherwise (the caller serializes as
 * usual). Throws connect's ResourceExhausted error through `tooLarge` when the message exceeds
 * `writeMaxBytes`.
 */
export function partsEncoder(
  desc: DescMessage,
  options: { writeMaxBytes: number; binaryOptions?: Partial<BinaryWriteOptions> },
  tooLarge: (size: number) => Error,
): PartsEncoder | undefined {
  const fields = bytesFields(desc);
  if (fields.length === 0) return undefined;
  return (message) => {
    let field: BytesField | undefined;
    let data: Uint8Array | undefined;
    for (const f of fields) {
      const v = f.read(message);
      if (v && v.byteLength >= MIN_PART_BYTES && v.byteLength > (data?.byteLength ?? 0)) {
        field = f;
        data = v;
      }
    }
    if ((message.$unknown as unknown[] | undefined)?.length) return undefined;
    if (!field || !data) return framedAlone(message);
    const rest = field.alone ? EMPTY : toBinary(desc, field.without(message) as never, options.binaryOptions);
    const split = fieldsBelow(rest, field.number);
    const head = new BinaryWriter()
      .raw(new Uint8Array(5)) // the envelope header: flags 0 (not compressed), then the size below
      .raw(rest.subarray(0, split))
      .tag(field.number, WireType.LengthDelimited)
      .uint32(data.byteLength)
      .finish();
    const size = head.byteLength - 5 + data.byteLength + rest.byteLength - split;
    if (size > options.writeMaxBytes) throw tooLarge(size);
    new DataView(head.buffer, head.byteOffset).setUint32(1, size);
    return split < rest.byteLength ? [head, data, rest.subarray(split)] : [head, data];
  };

  /** A set `bytes` field that is its message's only one, enveloped in one copy; else undefined. */
  function framedAlone(message: Msg): Uint8Array[] | undefined {
    for (const f of fields) {
      const data = f.alone ? f.read(message) : undefined;
      if (!data) continue;
      const tag = (f.number << 3) | WireType.LengthDelimited;
      const size = varintLength(tag) + varintLength(data.byteLength) + data.byteLength;
      if (size > options.writeMaxBytes) throw tooLarge(size);
      const frame = Buffer.allocUnsafe(5 + size);
      frame[0] = 0;
      frame.writeUInt32BE(size, 1);
      let at = writeVarint(frame, 5, tag);
      at = writeVarint(frame, at, data.byteLength);
      frame.set(data, at);
      return [frame];
    }
    return undefined;
  }
}

const EMPTY = new Uint8Array(0);

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n >>>= 7;
    length++;
  }
  return length;
}

/** Writes `n` (below 2^32) as a varint at `at`; returns where it ended. */
function writeVarint(into: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    into[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  into[at++] = n;
  return at;
}

/** The length of the fields numbered below `n` at the start of `encoded` (toBinary writes them in order). */
function fieldsBelow(encoded: Uint8Array, n: number): number {
  const reader = new BinaryReader(encoded);
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [no, wireType] = reader.tag();
    if (no > n) return start;
    reader.skip(wireType, no);
  }
  return encoded.byteLength;
}
