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
 * no `toBinary`: in parts from MIN_PART_BYTES, as one copy under it. A keystroke's echo is such a frame, and
 * `toBinary`'s writer and reflection allocated several times what the frame holds.
 */
import type { BinaryWriteOptions, DescField, DescMessage } from "@bufbuild/protobuf";
import { create, type Message, ScalarType, toBinary } from "@bufbuild/protobuf";
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
  /**
   * Set when the field, once set, is its message's only field (its oneof holds them all): a message
   * holding `value` in it.
   */
  holding?: (value: Uint8Array) => Msg;
}

/** The singular `bytes` fields of `desc`, on their own or as a oneof's member. */
function bytesFields(desc: DescMessage): BytesField[] {
  const isBytes = (f: DescField) => f.fieldKind === "scalar" && f.scalar === ScalarType.BYTES;
  return desc.fields.filter(isBytes).map((f): BytesField => {
    const oneof = f.oneof;
    if (oneof) {
      return {
        number: f.number,
        read: (m) => {
          const o = m[oneof.localName] as { case?: string; value?: unknown };
          return o.case === f.localName ? (o.value as Uint8Array) : undefined;
        },
        without: (m) => ({ ...m, [oneof.localName]: { case: undefined } }),
        holding: desc.fields.every((other) => other.oneof === oneof)
          ? (value) => create(desc, { [oneof.localName]: { case: f.localName, value } } as never)
          : undefined,
      };
    }
    // Implicit presence skips an empty value; explicit presence (proto2, `optional`) skips undefined.
    const absent = f.presence === FeatureSet_FieldPresence.IMPLICIT ? new Uint8Array(0) : undefined;
    return {
      number: f.number,
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
  const alone = fields.filter((f) => f.holding);
  return (message) => {
    if ((message.$unknown as unknown[] | undefined)?.length) return undefined;
    for (const f of alone) {
      const data = f.read(message);
      if (data) return framedAlone(f.number, data);
    }
    let field: BytesField | undefined;
    let data: Uint8Array | undefined;
    for (const f of fields) {
      const v = f.read(message);
      if (v && v.byteLength >= MIN_PART_BYTES && v.byteLength > (data?.byteLength ?? 0)) {
        field = f;
        data = v;
      }
    }
    if (!field || !data) return undefined;
    const rest = toBinary(desc, field.without(message) as never, options.binaryOptions);
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

  /** A message that is `data` in field `number` alone: its head, then `data` (in one copy when small). */
  function framedAlone(number: number, data: Uint8Array): Uint8Array[] {
    const tag = number * 8 + WireType.LengthDelimited;
    const headBytes = 5 + varintLength(tag) + varintLength(data.byteLength);
    const size = headBytes - 5 + data.byteLength;
    if (size > options.writeMaxBytes) throw tooLarge(size);
    const small = data.byteLength < MIN_PART_BYTES;
    const head = Buffer.allocUnsafe(small ? headBytes + data.byteLength : headBytes);
    head[0] = 0;
    head.writeUInt32BE(size, 1);
    writeVarint(head, writeVarint(head, 5, tag), data.byteLength);
    if (!small) return [head, data];
    head.set(data, headBytes);
    return [head];
  }
}

/**
 * A parser for `desc`'s messages that are one `bytes` field alone (a terminal's input frame: a
 * keystroke), reading them without fromBinary's reader and reflection; it answers undefined for any
 * other encoding, which the caller parses as usual. Undefined when `desc` has no such field.
 */
export function aloneBytesParser(desc: DescMessage): ((data: Uint8Array) => Message | undefined) | undefined {
  const byTag = new Map(
    bytesFields(desc)
      .filter((f) => f.holding)
      .map((f) => [f.number * 8 + WireType.LengthDelimited, f]),
  );
  if (byTag.size === 0) return undefined;
  return (data) => {
    const tagEnd = varintEnd(data, 0);
    const field = tagEnd < 0 ? undefined : byTag.get(readVarint(data, 0, tagEnd));
    if (!field) return undefined;
    const lengthEnd = varintEnd(data, tagEnd);
    if (lengthEnd < 0 || lengthEnd + readVarint(data, tagEnd, lengthEnd) !== data.byteLength) return undefined;
    return field.holding?.(data.subarray(lengthEnd)) as unknown as Message;
  };
}

/** Where the varint at `at` ends (within 4 bytes, below 2^28), or -1. */
function varintEnd(data: Uint8Array, at: number): number {
  for (let i = at; i < data.byteLength && i < at + 4; i++) if (data[i] < 0x80) return i + 1;
  return -1;
}

function readVarint(data: Uint8Array, at: number, end: number): number {
  let n = 0;
  for (let i = end - 1; i >= at; i--) n = n * 128 + (data[i] & 0x7f);
  return n;
}

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
