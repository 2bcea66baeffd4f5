/**
 * JSON Schema for a protobuf message, as MCP tool input and output schemas. Field names are the
 * proto names (snake_case, which `fromJson` accepts and `toJson(..., {useProtoFieldName: true})`
 * emits); descriptions come from the fields' doc comments; protovalidate rules become the matching
 * JSON Schema keywords, and "required" lists exactly the fields protovalidate refuses to leave out.
 */
import { create, type DescField, type DescMessage, getOption, hasOption, ScalarType } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { field as validateField } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { docOf } from "../../../../lib/contracts/registry.js";
import { int64Types } from "./tool-json.js";

export type JsonSchema = { [key: string]: unknown };

const unsigned = new Set([ScalarType.UINT32, ScalarType.UINT64, ScalarType.FIXED32, ScalarType.FIXED64]);
const int32 = new Set([
  ScalarType.INT32,
  ScalarType.UINT32,
  ScalarType.SINT32,
  ScalarType.FIXED32,
  ScalarType.SFIXED32,
]);

function scalarSchema(type: ScalarType): JsonSchema {
  if (type === ScalarType.STRING) return { type: "string" };
  if (type === ScalarType.BOOL) return { type: "boolean" };
  if (type === ScalarType.BYTES) return { type: "string", contentEncoding: "base64" };
  if (type === ScalarType.DOUBLE || type === ScalarType.FLOAT) return { type: "number" };
  const min = unsigned.has(type) ? { minimum: 0 } : {};
  if (int32.has(type)) return { type: "integer", ...min };
  // Numbers both ways (tool-json.ts); exact up to 2^53, which no size or count reaches.
  if (int64Types.has(type)) return { type: "integer", ...min, maximum: Number.MAX_SAFE_INTEGER };
  throw new Error(`unsupported scalar type ${type}`);
}

const wellKnown: Record<string, JsonSchema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$" },
};

function messageRef(message: DescMessage, seen: Set<string>): JsonSchema {
  return wellKnown[message.typeName] ?? messageSchema(message, seen);
}

function valueSchema(field: DescField, seen: Set<string>): JsonSchema {
  switch (field.fieldKind) {
    case "scalar":
      return scalarSchema(field.scalar);
    case "enum":
      return { type: "string", enum: field.enum.values.map((v) => v.name) };
    case "message":
      return messageRef(field.message, seen);
    case "list":
      return {
        type: "array",
        items:
          field.listKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.listKind === "enum"
              ? { type: "string", enum: field.enum.values.map((v) => v.name) }
              : messageRef(field.message, seen),
      };
    case "map":
      return {
        type: "object",
        additionalProperties:
          field.mapKind === "scalar"
            ? scalarSchema(field.scalar)
            : field.mapKind === "enum"
              ? { type: "string", enum: field.enum.values.map((v) => v.name) }
              : messageRef(field.message, seen),
      };
  }
}

/** Applies the protovalidate rules of a field as JSON Schema keywords. */
function applyRules(field: DescField, schema: JsonSchema): void {
  if (!hasOption(field, validateField)) return;
  const t = getOption(field, validateField).type;
  if (t.case === "string") {
    const r = t.value;
    if (r.minLen > 0n) schema.minLength = Number(r.minLen);
    if (r.maxLen > 0n) schema.maxLength = Number(r.maxLen);
    if (r.pattern) schema.pattern = r.pattern;
    if (r.in.length) schema.enum = [...r.in];
  } else if (t.case === "uint32" || t.case === "int32" || t.case === "uint64" || t.case === "int64") {
    const r = t.value;
    if (r.lessThan.case === "lte") schema.maximum = Number(r.lessThan.value);
    if (r.lessThan.case === "lt") schema.exclusiveMaximum = Number(r.lessThan.value);
    if (r.greaterThan.case === "gte") schema.minimum = Number(r.greaterThan.value);
    if (r.greaterThan.case === "gt") schema.exclusiveMinimum = Number(r.greaterThan.value);
  } else if (t.case === "repeated") {
    const r = t.value;
    if (r.minItems > 0n) schema.minItems = Number(r.minItems);
    if (r.maxItems > 0n) schema.maxItems = Number(r.maxItems);
    if (r.items?.type.case === "string" && schema.items) {
      const items = schema.items as JsonSchema;
      const s = r.items.type.value;
      if (s.minLen > 0n) items.minLength = Number(s.minLen);
      if (s.maxLen > 0n) items.maxLength = Number(s.maxLen);
    }
  } else if (t.case === "map") {
    if (t.value.maxPairs > 0n) schema.maxProperties = Number(t.value.maxPairs);
  } else if (t.case === "bytes") {
    if (t.value.maxLen > 0n) schema.description = `${schema.description ?? ""} At most ${t.value.maxLen} bytes.`.trim();
  }
}

const validator = createValidator();

/**
 * The fields a request cannot leave out: those protovalidate finds fault with in an empty message.
 * Asking the validator, rather than reading rules, keeps "required" exact for every rule (a minimum
 * length, a port's range, a pattern an empty string fails), and leaves every other field optional.
 */
function requiredFields(message: DescMessage): Set<string> {
  const check = validator.validate(message, create(message));
  if (check.kind !== "invalid") return new Set();
  return new Set(check.violations.map((v) => v.field[0]).flatMap((f) => (f?.kind === "field" ? [f.name] : [])));
}

/** The JSON Schema of a message. Recursive message types are cut off at their second occurrence. */
export function messageSchema(message: DescMessage, seen = new Set<string>()): JsonSchema {
  if (seen.has(message.typeName)) return { type: "object" };
  const inner = new Set(seen).add(message.typeName);
  const properties: Record<string, JsonSchema> = {};
  const required = requiredFields(message);
  for (const field of message.fields) {
    const schema = valueSchema(field, inner);
    const doc = docOf(field);
    if (doc) schema.description = doc;
    if (field.oneof) {
      schema.description = `${schema.description ?? ""} (Exclusive with ${field.oneof.fields
        .filter((f) => f !== field)
        .map((f) => f.name)
        .join(", ")}.)`.trim();
    }
    applyRules(field, schema);
    properties[field.name] = schema;
  }
  const doc = docOf(message);
  return {
    type: "object",
    ...(doc ? { description: doc } : {}),
    properties,
    ...(required.size ? { required: message.fields.map((f) => f.name).filter((n) => required.has(n)) } : {}),
    additionalProperties: false,
  };
}
