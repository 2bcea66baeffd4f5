/**
 * A streamed message's encoding in parts, so its one large `bytes` field (terminal output, a
 * process's output, a file's chunk) goes to the socket as it is instead of being copied twice, once
 * by protobuf-es's `toBinary` (`finish()` joins the parts) and once more by connect's envelope.
 *
 * The parts are the bytes connect would send: a small array (the 5-byte envelope header, the fields
 * numbered below the large one, its tag and length), the field's own bytes, then the fields numbered
 * above it, if any. Messages with unknown fields take the ordinary path.
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
 * MIN_PART_BYTES, undefined otherwise (the caller serializes as usual). Throws connect's
 * ResourceExhausted error through `tooLarge` when the message exceeds `writeMaxBytes`.
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
    if (!field || !data || (message.$unknown as unknown[] | undefined)?.length) return undefined;
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
