/**
 * Messages that are one bytes member of their only oneof (a terminal's input frame, a stream's
 * stdin) proved valid without protovalidate. Its reflection allocates about 1 KB per message (a
 * ReflectMessage with two Maps), and on a terminal's Attach every keystroke is one: a tenth of what
 * the runner allocated per echo, which sets how often its young generation is collected.
 *
 * The plan is made once per message type from its rules, and only from rules it checks exactly:
 * none on the message, at most `required` on the oneof, and at most `min_len`/`max_len` on the
 * bytes member. It only ever answers "valid": any other message, type or rule goes to
 * protovalidate, which also words the violations.
 */
import {
  type DescField,
  type DescMessage,
  getOption,
  hasOption,
  isFieldSet,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import {
  BytesRulesSchema,
  FieldRulesSchema,
  field as fieldRules,
  MessageRulesSchema,
  message as messageRules,
  OneofRulesSchema,
  oneof as oneofRules,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

interface Bounds {
  min: number;
  max: number;
}

/** The oneof's name and, per bytes member with rules the plan checks, its length bounds. */
type Plan = { oneof: string; members: Map<string, Bounds> } | null;

const plans = new WeakMap<DescMessage, Plan>();

/** True only if `message` is valid under its rules; false means "ask protovalidate". */
export function provedValid(schema: DescMessage, message: Message): boolean {
  let plan = plans.get(schema);
  if (plan === undefined) {
    plan = planFor(schema);
    plans.set(schema, plan);
  }
  if (!plan) return false;
  const set = (message as unknown as Record<string, { case?: string; value?: unknown }>)[plan.oneof];
  const bounds = set?.case === undefined ? undefined : plan.members.get(set.case);
  if (!bounds || !(set.value instanceof Uint8Array)) return false;
  return set.value.length >= bounds.min && set.value.length <= bounds.max;
}

function planFor(schema: DescMessage): Plan {
  if (schema.oneofs.length !== 1) return null;
  const oneof = schema.oneofs[0];
  if (schema.fields.some((f) => f.oneof !== oneof)) return null;
  if (hasOption(schema, messageRules) && !only(MessageRulesSchema, getOption(schema, messageRules), [])) return null;
  if (hasOption(oneof, oneofRules) && !only(OneofRulesSchema, getOption(oneof, oneofRules), ["required"])) return null;
  const members = new Map<string, Bounds>();
  for (const f of oneof.fields) {
    const bounds = bytesBounds(f);
    if (bounds) members.set(f.localName, bounds);
  }
  return members.size > 0 ? { oneof: oneof.localName, members } : null;
}

/** The length bounds of a bytes field whose rules are at most min_len and max_len. */
function bytesBounds(f: DescField): Bounds | undefined {
  if (f.fieldKind !== "scalar" || f.scalar !== ScalarType.BYTES) return undefined;
  if (!hasOption(f, fieldRules)) return { min: 0, max: Number.POSITIVE_INFINITY };
  const rules = getOption(f, fieldRules);
  if (!only(FieldRulesSchema, rules, ["bytes"]) || rules.type.case !== "bytes") return undefined;
  const bytes = rules.type.value;
  if (!only(BytesRulesSchema, bytes, ["min_len", "max_len"])) return undefined;
  // proto2 scalars: unset reads as 0, so presence decides.
  const maxSet = isFieldSet(bytes, BytesRulesSchema.field.maxLen);
  return { min: Number(bytes.minLen), max: maxSet ? Number(bytes.maxLen) : Number.POSITIVE_INFINITY };
}

/** Whether `rules` sets no field but `allowed` and carries no extension (predefined rules). */
function only(schema: DescMessage, rules: Message, allowed: string[]): boolean {
  if ((rules as { $unknown?: unknown[] }).$unknown?.length) return false;
  return schema.fields.every((f) => allowed.includes(f.name) || !isFieldSet(rules, f));
}
