/**
 * Invalid UTF-8 in a binary request is the client's error. protobuf-es throws on it while
 * connect-es parses the request, before any interceptor, and connect-es reports every binary
 * parse failure as Internal (HTTP 500). So decoding marks such a string instead of throwing, with
 * a lone surrogate (which no valid UTF-8 decodes to), and the validate interceptor refuses a
 * message holding one with InvalidArgument. Process-wide, like the Text Encoding it replaces: a
 * client in the same process also receives marked strings instead of an exception.
 */
import { type DescMessage, type Message, ScalarType } from "@bufbuild/protobuf";
import { isReflectMessage, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
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
  return walk(reflect(schema, message), "");
}

function walk(m: ReflectMessage, prefix: string): string | undefined {
  for (const f of m.fields) {
    if (!m.isSet(f)) continue;
    const name = prefix + f.name;
    const bad = (v: unknown, at = name): string | undefined =>
      typeof v === "string" && LONE_SURROGATE.test(v) ? at : isReflectMessage(v) ? walk(v, `${at}.`) : undefined;
    switch (f.fieldKind) {
      case "scalar":
        if (f.scalar === ScalarType.STRING && bad(m.get(f))) return name;
        break;
      case "message": {
        const found = bad(m.get(f));
        if (found) return found;
        break;
      }
      case "list":
        for (const v of m.get(f)) {
          const found = bad(v);
          if (found) return found;
        }
        break;
      case "map":
        for (const [k, v] of m.get(f)) {
          const found = bad(k) ?? bad(v, `${name}["${String(k)}"]`);
          if (found) return found;
        }
        break;
    }
  }
  return undefined;
}
