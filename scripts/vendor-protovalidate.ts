/**
 * Writes third_party/protovalidate/buf/validate/validate.proto from the descriptor that the
 * @bufbuild/protovalidate npm package embeds. The Buf registry cannot be reached here, so this is how
 * the vendored module is produced; the package version pins the rules. Comments are not part of a
 * descriptor, so the output carries none. Run: npx tsx scripts/vendor-protovalidate.ts
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fromBinary, isFieldSet } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import {
  file_buf_validate_validate,
  PredefinedRulesSchema,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const file = file_buf_validate_validate.proto;
const out: string[] = [];
const q = (s: string) => JSON.stringify(s);

const scalarNames: Partial<Record<Type, string>> = {
  [Type.DOUBLE]: "double",
  [Type.FLOAT]: "float",
  [Type.INT64]: "int64",
  [Type.UINT64]: "uint64",
  [Type.INT32]: "int32",
  [Type.FIXED64]: "fixed64",
  [Type.FIXED32]: "fixed32",
  [Type.BOOL]: "bool",
  [Type.STRING]: "string",
  [Type.BYTES]: "bytes",
  [Type.UINT32]: "uint32",
  [Type.SFIXED32]: "sfixed32",
  [Type.SFIXED64]: "sfixed64",
  [Type.SINT32]: "sint32",
  [Type.SINT64]: "sint64",
};

function typeOf(f: FieldDescriptorProto): string {
  return scalarNames[f.type] ?? f.typeName;
}

/** The `(buf.validate.predefined)` option is stored as unknown field 1160 of FieldOptions. */
function fieldOptions(f: FieldDescriptorProto): string {
  const parts: string[] = [];
  if (isFieldSet(f, FieldDescriptorProtoSchema.field.defaultValue)) {
    parts.push(`default = ${f.type === Type.STRING ? q(f.defaultValue) : f.defaultValue}`);
  }
  if (isFieldSet(f, FieldDescriptorProtoSchema.field.jsonName) && f.jsonName !== camel(f.name))
    parts.push(`json_name = ${q(f.jsonName)}`);
  const opts = f.options;
  if (opts?.deprecated) parts.push("deprecated = true");
  if (opts && isFieldSet(opts, FieldOptionsSchema.field.packed)) parts.push(`packed = ${opts.packed}`);
  for (const u of opts?.$unknown ?? []) {
    if (u.no !== 1160) throw new Error(`unexpected unknown option ${u.no} on ${f.name}`);
    const rules = fromBinary(PredefinedRulesSchema, u.data.subarray(lengthPrefix(u.data)));
    for (const r of rules.cel) {
      parts.push(
        `(buf.validate.predefined).cel = {\n      id: ${q(r.id)}\n      expression: ${q(r.expression)}${r.message ? `\n      message: ${q(r.message)}` : ""}\n    }`,
      );
    }
  }
  return parts.length ? ` [\n    ${parts.join(",\n    ")}\n  ]` : "";
}

/** Unknown fields keep the tag-stripped payload, which for a message is length-prefixed. */
function lengthPrefix(data: Uint8Array): number {
  let i = 0;
  while (data[i] & 0x80) i++;
  return i + 1;
}

function inOneof(f: FieldDescriptorProto): boolean {
  return isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && !f.proto3Optional;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function printEnum(e: EnumDescriptorProto, indent: string) {
  out.push(`${indent}enum ${e.name} {`);
  for (const v of e.value) out.push(`${indent}  ${v.name} = ${v.number};`);
  out.push(`${indent}}`);
}

function printField(f: FieldDescriptorProto, indent: string, inOneof: boolean) {
  const label = inOneof
    ? ""
    : f.label === Label.REPEATED
      ? "repeated "
      : f.label === Label.REQUIRED
        ? "required "
        : "optional ";
  out.push(`${indent}${label}${typeOf(f)} ${f.name} = ${f.number}${fieldOptions(f).replaceAll("\n", `\n${indent}`)};`);
}

function printMessage(m: DescriptorProto, indent: string) {
  out.push(`${indent}message ${m.name} {`);
  const inner = `${indent}  `;
  for (const o of m.options?.$unknown ?? []) throw new Error(`unexpected message option ${o.no}`);
  const printedOneofs = new Set<number>();
  for (const f of m.field) {
    if (inOneof(f)) {
      if (printedOneofs.has(f.oneofIndex)) continue;
      printedOneofs.add(f.oneofIndex);
      out.push(`${inner}oneof ${m.oneofDecl[f.oneofIndex].name} {`);
      for (const g of m.field.filter((x) => inOneof(x) && x.oneofIndex === f.oneofIndex))
        printField(g, `${inner}  `, true);
      out.push(`${inner}}`);
      continue;
    }
    printField(f, inner, false);
  }
  for (const n of m.nestedType) printMessage(n, inner);
  for (const e of m.enumType) printEnum(e, inner);
  for (const r of m.extensionRange) {
    out.push(`${inner}extensions ${r.start} to ${r.end >= 536870912 ? "max" : r.end - 1};`);
  }
  for (const r of m.reservedRange) {
    out.push(`${inner}reserved ${r.start === r.end - 1 ? r.start : `${r.start} to ${r.end - 1}`};`);
  }
  if (m.reservedName.length) out.push(`${inner}reserved ${m.reservedName.map(q).join(", ")};`);
  out.push(`${indent}}`);
}

out.push(`// Generated by scripts/vendor-protovalidate.ts from the descriptor embedded in`);
out.push(`// @bufbuild/protovalidate. Do not edit: re-run the script after upgrading the package.`);
out.push(`syntax = ${q(file.syntax || "proto2")};`, "");
out.push(`package ${file.package};`, "");
for (const d of file.dependency) out.push(`import ${q(d)};`);
out.push("");
const fo = file.options;
if (fo?.goPackage) out.push(`option go_package = ${q(fo.goPackage)};`);
if (fo?.javaMultipleFiles) out.push("option java_multiple_files = true;");
if (fo?.javaOuterClassname) out.push(`option java_outer_classname = ${q(fo.javaOuterClassname)};`);
if (fo?.javaPackage) out.push(`option java_package = ${q(fo.javaPackage)};`);
out.push("");
for (const x of file.extension) {
  out.push(`extend ${x.extendee.slice(1)} {`);
  printField(x, "  ", false);
  out.push("}", "");
}
for (const m of file.messageType) {
  printMessage(m, "");
  out.push("");
}
for (const e of file.enumType) {
  printEnum(e, "");
  out.push("");
}

const target = join(import.meta.dirname, "..", "third_party", "protovalidate", "buf", "validate", "validate.proto");
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, `${out.join("\n").trimEnd()}\n`);
execFileSync("npx", ["buf", "format", "-w", "third_party/protovalidate"], { stdio: "inherit" });
console.log(`wrote ${target}`);
