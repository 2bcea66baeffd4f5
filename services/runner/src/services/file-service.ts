/**
 * FileService: the workspace's files. Every path goes through `Workspace.at`, and every operation
 * acts on the confined location it hands out (a parent directory descriptor and a name), never on
 * a path string that a swapped symlink could redirect. The handlers live in files/ by area: reads,
 * text edits, entry operations,
 * streaming transfers.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import type { FileService } from "../../../../gen/devex/runner/v1/file_pb.js";
import type { FileServiceDeps } from "./files/deps.js";
import { fileEdits } from "./files/edits.js";
import { fileEntries } from "./files/entries.js";
import { fileReads } from "./files/reads.js";
import { fileTransfers } from "./files/transfers.js";

export function createFileService(deps: FileServiceDeps): ServiceImpl<typeof FileService> {
  return { ...fileReads(deps), ...fileEdits(deps), ...fileEntries(deps), ...fileTransfers(deps) };
}
