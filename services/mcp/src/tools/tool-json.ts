/**
 * Tool results as JSON: proto field names, every field present, and 64-bit integers (sizes, byte
 * counts) as JSON numbers rather than the strings proto JSON writes. Numbers are exact up to 2^53
 * (8 PiB), far beyond any size or count a tool reports; the schemas say so with their maximum.
 */
import {
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";

export const int64Types: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);

export function toolJson(desc: DescMessage, message: Message): JsonObject {
  const json = toJson(desc, message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
  return withNumbers(desc, json);
}

/** Rewrites the 64-bit integers of `json`, a message of type `desc`, as numbers, in place. */
function withNumbers(desc: DescMessage, json: JsonObject): JsonObject {
  for (const field of desc.fields) {
    const value = json[field.name];
    const convert = elementConverter(field);
    if (value === undefined || value === null || !convert) continue;
    if (field.fieldKind === "list") json[field.name] = (value as JsonValue[]).map(convert);
    else if (field.fieldKind === "map") {
      json[field.name] = Object.fromEntries(Object.entries(value as JsonObject).map(([k, v]) => [k, convert(v)]));
    } else json[field.name] = convert(value);
  }
  return json;
}

/** What to do with one value of the field (each element of a list or map); undefined: nothing. */
function elementConverter(field: DescField): ((v: JsonValue) => JsonValue) | undefined {
  const kind =
    field.fieldKind === "list" ? field.listKind : field.fieldKind === "map" ? field.mapKind : field.fieldKind;
  const { message, scalar } = field;
  if (kind === "message" && message) return (v) => (isObject(v) ? withNumbers(message, v) : v);
  if (kind === "scalar" && scalar !== undefined && int64Types.has(scalar)) return (v) => Number(v);
  return undefined;
}

/** A nested message's JSON object; well-known types such as Timestamp are strings and stay as they are. */
function isObject(v: JsonValue): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
