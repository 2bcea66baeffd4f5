/**
 * The contracts with their doc comments. Generated code carries descriptors without comments, so
 * `npm run generate` also writes descriptors/devex.binpb (a FileDescriptorSet with source info); this loads
 * it, for anything that turns contracts into documentation: MCP tool descriptions and schemas.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  createFileRegistry,
  type DescMethod,
  type DescService,
  type FileRegistry,
  fromBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import { projectRoot } from "../kit/project-root.js";

export function loadContracts(path = join(projectRoot, "descriptors", "devex.binpb")): FileRegistry {
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(path)));
}

type Commented = Parameters<typeof getComments>[0];

/** The leading doc comment of a service, method, message, field or enum, as one paragraph. */
export function docOf(desc: Commented): string {
  const text = getComments(desc).leading ?? "";
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
}

export type { DescMethod, DescService };
