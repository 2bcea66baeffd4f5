/**
 * Invalid UTF-8 in a binary request is the client's error. protobuf-es throws on it while
 * connect-es parses the request, before any interceptor, and connect-es reports every binary
 * parse failure as Internal (HTTP 500). So decoding marks such a string instead of throwing, with
 * a lone surrogate (which no valid UTF-8 decodes to), and the validate interceptor refuses a
 * message holding one with InvalidArgument. Process-wide, like the Text Encoding it replaces: a
 * client in the same process also receives marked strings instead of an exception.
 */
import {
  type DescField,
  type DescMessage,
  fromJson,
  type JsonValue,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

const MARK = "\uD800";
/** A surrogate not part of a pair (with the u flag pairs are one code point). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
let installed = false;

/** Makes strict UTF-8 decoding mark invalid strings instead of throwing (once per process). */
export function installLenientUtf8(): void {
  if (installed) return;
  installed = true;
  const base = getTextEncoding();
  configureTextEncoding({
    ...base,
    decodeUtf8(bytes, strict) {
      if (!strict) return base.decodeUtf8(bytes, false);
      try {
        return base.decodeUtf8(bytes, true);
      } catch {
        return MARK + base.decodeUtf8(bytes, false);
      }
    },
  });
}

/** The first string field (dotted path) that is not well-formed Unicode, or undefined. */
export function malformedStringField(schema: DescMessage, message: Message): string | undefined {
  return walk(schema, message as unknown as Msg, "");
}

type Msg = Record<string, unknown>;

const bad = (v: unknown): boolean => typeof v === "string" && LONE_SURROGATE.test(v);

/**
 * Reads only the fields that can hold a string, found once per message type, and reads them off the
 * plain message (protobuf-es's messages are plain objects) instead of through `reflect`: this runs
 * on every request message, a keystroke among them, and a keystroke's frame holds no string.
 */
function walk(desc: DescMessage, m: Msg, prefix: string): string | undefined {
  for (const f of stringFields(desc)) {
    const v = fieldValue(f, m);
    if (v === undefined) continue;
    const name = prefix + f.name;
    let found: string | undefined;
    switch (f.fieldKind) {
      case "scalar":
        if (bad(v)) return name;
        break;
      case "message":
        found = inMessage(f, v, name);
        break;
      case "list":
        for (const item of v as unknown[]) {
          found = f.listKind === "message" ? inMessage(f, item, name) : bad(item) ? name : undefined;
          if (found) break;
        }
        break;
      case "map":
        for (const [key, item] of Object.entries(v as Msg)) {
          if (bad(key)) return name;
          const at = `${name}["${key}"]`;
          found = f.mapKind === "message" ? inMessage(f, item, at) : bad(item) ? at : undefined;
          if (found) break;
        }
        break;
    }
    if (found) return found;
  }
  return undefined;
}

/**
 * A message-typed value of `f` as protobuf-es holds it: a message; a wrapper type's value unboxed (a
 * StringValue as a string); or a google.protobuf.Struct as a plain JSON object (anywhere but in a
 * google.protobuf.Value), decided by the field's type as protobuf-es decides it, since a JSON
 * object's keys are the client's.
 */
function inMessage(f: DescField & { message: DescMessage }, v: unknown, name: string): string | undefined {
  if (typeof v !== "object" || v === null) return bad(v) ? `${name}.value` : undefined;
  const json = f.message.typeName === STRUCT && f.parent.typeName !== "google.protobuf.Value";
  // Read back as the message it stands for, so the path names the field.
  const m = json ? (fromJson(f.message, v as JsonValue) as unknown as Msg) : (v as Msg);
  return walk(f.message, m, `${name}.`);
}

const STRUCT = "google.protobuf.Struct";

function fieldValue(f: DescField, m: Msg): unknown {
  if (!f.oneof) return m[f.localName];
  const o = m[f.oneof.localName] as { case?: string; value?: unknown } | undefined;
  return o?.case === f.localName ? o.value : undefined;
}

const plans = new WeakMap<DescMessage, DescField[]>();

/** `desc`'s fields that are, or can contain, a string (map keys included). */
function stringFields(desc: DescMessage): DescField[] {
  let plan = plans.get(desc);
  if (!plan) {
    plan = desc.fields.filter((f) => holdsStrings(f, reachesStrings));
    plans.set(desc, plan);
  }
  return plan;
}

/** Whether `f` is or can contain a string, `message` saying whether a message type can. */
function holdsStrings(f: DescField, message: (desc: DescMessage) => boolean): boolean {
  switch (f.fieldKind) {
    case "scalar":
      return f.scalar === ScalarType.STRING;
    case "list":
      return f.listKind === "scalar" ? f.scalar === ScalarType.STRING : f.listKind === "message" && message(f.message);
    case "map":
      return (
        f.mapKey === ScalarType.STRING ||
        (f.mapKind === "scalar" && f.scalar === ScalarType.STRING) ||
        (f.mapKind === "message" && message(f.message))
      );
    case "message":
      return message(f.message);
    default:
      return false;
  }
}

/** Whether a message of type `desc` can contain a string: some type it reaches has a string field. */
function reachesStrings(desc: DescMessage): boolean {
  const seen = new Set<DescMessage>();
  const visit = (d: DescMessage): boolean => {
    if (seen.has(d)) return false;
    seen.add(d);
    return d.fields.some((f) => holdsStrings(f, visit));
  };
  return visit(desc);
}
