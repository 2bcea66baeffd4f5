/**
 * The validation shortcut (lib/kit/proved-valid.ts) never calls a message valid that protovalidate
 * refuses, for every message type in gen/ and for rules it must leave alone; and it does prove a
 * terminal's input frame valid, which is what it is for.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type Message,
  ScalarType,
  setExtension,
} from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
  MessageOptionsSchema,
  OneofOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import {
  BytesRulesSchema,
  FieldRulesSchema,
  field as fieldRules,
  MessageRulesSchema,
  message as messageRules,
  OneofRulesSchema,
  oneof as oneofRules,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { AttachRequestSchema } from "../../gen/devex/runner/v1/terminal_pb.js";
import { projectRoot } from "./project-root.js";
import { provedValid } from "./proved-valid.js";

const validator = createValidator();

/** Every message schema the project generates. */
async function generatedSchemas(): Promise<DescMessage[]> {
  const files = readdirSync(path.join(projectRoot, "gen"), { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith("_pb.ts"),
  );
  const out: DescMessage[] = [];
  for (const f of files) {
    const mod = (await import(path.join(projectRoot, "gen", f.replace(/\.ts$/, ".js")))) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      if ((v as { kind?: string })?.kind === "message") out.push(v as DescMessage);
    }
  }
  return out;
}

/** Messages of `schema` with each bytes member of each oneof set at lengths around its rules. */
function samples(schema: DescMessage): Message[] {
  const out: Message[] = [create(schema)];
  for (const oneof of schema.oneofs) {
    for (const f of oneof.fields) {
      if (f.fieldKind !== "scalar" || f.scalar !== ScalarType.BYTES) continue;
      for (const n of [0, 1, 2, 1 << 20, (1 << 20) + 1, 16 << 20, (16 << 20) + 1]) {
        out.push(create(schema, { [oneof.localName]: { case: f.localName, value: new Uint8Array(n) } }));
      }
    }
  }
  return out;
}

/** A message type `Frame { oneof kind { bytes data = 1; string note = 2; } }` with the given options. */
function frameSchema(
  o: {
    data?: Parameters<typeof create<typeof FieldRulesSchema>>[1];
    oneof?: object;
    message?: object;
    extra?: boolean;
  } = {},
): DescMessage {
  const dataOptions = create(FieldOptionsSchema);
  if (o.data) setExtension(dataOptions, fieldRules, create(FieldRulesSchema, o.data));
  const oneofOptions = create(OneofOptionsSchema);
  if (o.oneof) setExtension(oneofOptions, oneofRules, create(OneofRulesSchema, o.oneof));
  const messageOptions = create(MessageOptionsSchema);
  if (o.message) setExtension(messageOptions, messageRules, create(MessageRulesSchema, o.message));
  const file = create(FileDescriptorProtoSchema, {
    name: "frame.proto",
    package: "test",
    syntax: "proto3",
    messageType: [
      {
        name: "Frame",
        options: messageOptions,
        oneofDecl: [{ name: "kind", options: oneofOptions }],
        field: [
          { name: "data", number: 1, type: FieldDescriptorProto_Type.BYTES, oneofIndex: 0, options: dataOptions },
          { name: "note", number: 2, type: FieldDescriptorProto_Type.STRING, oneofIndex: 0 },
          ...(o.extra ? [{ name: "other", number: 3, type: FieldDescriptorProto_Type.INT32 }] : []),
        ],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getMessage("test.Frame")!;
}

const frame = (schema: DescMessage, n: number) => create(schema, { kind: { case: "data", value: new Uint8Array(n) } });

describe("proved valid without protovalidate (lib/kit/proved-valid.ts)", function () {
  this.timeout(60_000);

  it("never calls a message valid that protovalidate refuses, for every message type in gen/", async () => {
    const schemas = await generatedSchemas();
    assert.ok(schemas.length > 100, `${schemas.length} message types`);
    let proved = 0;
    for (const schema of schemas) {
      for (const m of samples(schema)) {
        if (!provedValid(schema, m)) continue;
        proved++;
        assert.equal(validator.validate(schema, m).kind, "valid", `${schema.typeName}: proved valid, but is not`);
      }
    }
    assert.ok(proved > 0, "some messages were proved valid");
  });

  it("proves a terminal's input frame valid up to its max_len, and leaves a longer one to protovalidate", () => {
    const input = (n: number) => create(AttachRequestSchema, { frame: { case: "input", value: new Uint8Array(n) } });
    assert.equal(provedValid(AttachRequestSchema, input(3)), true);
    assert.equal(provedValid(AttachRequestSchema, input(1 << 20)), true);
    assert.equal(provedValid(AttachRequestSchema, input((1 << 20) + 1)), false);
    assert.equal(validator.validate(AttachRequestSchema, input((1 << 20) + 1)).kind, "invalid");
    assert.equal(
      provedValid(AttachRequestSchema, create(AttachRequestSchema, { frame: { case: "ack", value: 5n } })),
      false,
    );
    assert.equal(provedValid(AttachRequestSchema, create(AttachRequestSchema)), false, "the required oneof unset");
  });

  it("checks min_len and max_len as protovalidate does, with the oneof required", () => {
    const schema = frameSchema({
      data: { type: { case: "bytes", value: create(BytesRulesSchema, { minLen: 2n, maxLen: 4n }) } },
      oneof: { required: true },
    });
    for (let n = 0; n <= 6; n++) {
      const valid = validator.validate(schema, frame(schema, n)).kind === "valid";
      assert.equal(provedValid(schema, frame(schema, n)), valid, `${n} bytes`);
    }
    assert.equal(provedValid(schema, create(schema)), false);
  });

  it("leaves every other rule to protovalidate", () => {
    const refused: Array<[string, Parameters<typeof frameSchema>[0]]> = [
      ["bytes.len", { data: { type: { case: "bytes", value: create(BytesRulesSchema, { len: 3n }) } } }],
      [
        "bytes.const",
        { data: { type: { case: "bytes", value: create(BytesRulesSchema, { const: new Uint8Array(3) }) } } },
      ],
      [
        "bytes.prefix",
        { data: { type: { case: "bytes", value: create(BytesRulesSchema, { prefix: new Uint8Array(1) }) } } },
      ],
      ["a field CEL rule", { data: { cel: [{ id: "x", expression: "size(this) < 2" }] } }],
      ["a message CEL rule", { message: { cel: [{ id: "x", expression: "false" }] } }],
      ["a field outside the oneof", { extra: true }],
    ];
    for (const [name, options] of refused) {
      const schema = frameSchema(options);
      assert.equal(provedValid(schema, frame(schema, 3)), false, name);
    }
    const plain = frameSchema();
    assert.equal(provedValid(plain, frame(plain, 3)), true, "no rules at all");
    assert.equal(provedValid(plain, create(plain, { kind: { case: "note", value: "x" } })), false, "a string member");
  });
});
