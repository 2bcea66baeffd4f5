import assert from "node:assert/strict";
import { create, createFileRegistry, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_struct,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { describe, it } from "mocha";
import { ExecRequestSchema } from "../../gen/devex/runner/v1/process_pb.js";
import { AttachRequestSchema } from "../../gen/devex/runner/v1/terminal_pb.js";
import { installLenientUtf8, malformedStringField } from "./utf8.js";

installLenientUtf8();

/** "ok", then bytes that are not UTF-8: decoded leniently, a marked string. */
const INVALID = Buffer.from([0x6f, 0x6b, 0xc0, 0xaf]);
const marked = (): string => {
  // The string protobuf-es's decoder yields for INVALID as a start frame's terminal_id (field 1 in field 1).
  const m = fromBinary(
    AttachRequestSchema,
    Buffer.concat([Buffer.from([0x0a, INVALID.length + 2, 0x0a, INVALID.length]), INVALID]),
  );
  assert.equal(m.frame.case, "start");
  return m.frame.value.terminalId;
};

/** A message type with the fields protobuf-es holds unboxed: a Struct as JSON, a StringValue as a string. */
function unboxedFields(): DescMessage {
  const registry = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "utf8_test.proto",
      package: "devex.test",
      syntax: "proto3",
      dependency: ["google/protobuf/struct.proto", "google/protobuf/wrappers.proto"],
      messageType: [
        {
          name: "Unboxed",
          field: [
            { name: "meta", number: 1, type: FieldDescriptorProto_Type.MESSAGE, typeName: ".google.protobuf.Struct" },
            {
              name: "label",
              number: 2,
              type: FieldDescriptorProto_Type.MESSAGE,
              typeName: ".google.protobuf.StringValue",
            },
            { name: "count", number: 3, type: FieldDescriptorProto_Type.INT32 },
          ].map((f) => ({ ...f, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: f.name })),
        },
      ],
    }),
    (name) =>
      ({
        "google/protobuf/struct.proto": file_google_protobuf_struct,
        "google/protobuf/wrappers.proto": file_google_protobuf_wrappers,
      })[name],
  );
  return registry.getMessage("devex.test.Unboxed") as DescMessage;
}

describe("invalid UTF-8 in string fields (lib/kit/utf8.ts)", () => {
  const bad = marked();

  it("decodes invalid UTF-8 to a marked string instead of throwing", () => {
    assert.match(bad, /^[\uD800-\uDFFF]/u);
    assert.ok(bad.endsWith("ok\uFFFD\uFFFD"), JSON.stringify(bad));
  });

  it("finds nothing in a frame without strings, nor in valid ones", () => {
    const input = create(AttachRequestSchema, { frame: { case: "input", value: INVALID } });
    assert.equal(malformedStringField(AttachRequestSchema, input), undefined);
    const exec = create(ExecRequestSchema, {
      command: { argv: ["ls", "-é"], env: { HOME: "/home/ü" }, cwd: "/tmp" },
      stdin: INVALID,
    });
    assert.equal(malformedStringField(ExecRequestSchema, exec), undefined);
  });

  it("names the field in a oneof's message, a list, a map's key and a map's value", () => {
    const cases: Array<[DescMessage, object, string]> = [
      [AttachRequestSchema, { frame: { case: "start", value: { terminalId: bad } } }, "start.terminal_id"],
      [ExecRequestSchema, { command: { argv: ["ls", bad] } }, "command.argv"],
      [ExecRequestSchema, { command: { argv: ["ls"], env: { [bad]: "x" } } }, "command.env"],
      [ExecRequestSchema, { command: { argv: ["ls"], env: { OK: "x", LANG: bad } } }, 'command.env["LANG"]'],
      [ExecRequestSchema, { command: { argv: ["ls"], cwd: bad } }, "command.cwd"],
    ];
    for (const [schema, init, field] of cases) {
      assert.equal(malformedStringField(schema, create(schema, init as never)), field, JSON.stringify(init));
    }
  });

  it("looks into fields protobuf-es holds unboxed: a Struct as JSON, a StringValue as a string", () => {
    const schema = unboxedFields();
    const check = (init: object) => malformedStringField(schema, create(schema, init as never));
    assert.equal(check({ meta: { a: [1, { b: "fine" }] }, label: "fine", count: 3 }), undefined);
    assert.equal(
      check({ meta: { a: [1, { b: bad }] } }),
      'meta.fields["a"].list_value.values.struct_value.fields["b"].string_value',
    );
    assert.equal(check({ meta: { [bad]: true } }), "meta.fields");
    // A Struct's keys are the client's: one named like protobuf-es's type marker changes nothing.
    assert.equal(check({ meta: { $typeName: "google.protobuf.Struct", a: bad } }), 'meta.fields["a"].string_value');
    assert.equal(check({ label: bad }), "label.value");
  });
});
