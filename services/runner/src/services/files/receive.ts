/**
 * Receiving one file of any size, shared by UploadFile and the HTTP transfer route's PUT: the
 * target is resolved like WriteFile's (its final name is never followed), the bytes go to a
 * StagedFile beside it, and only a stream that ended cleanly with the declared size and the expected
 * SHA-256 is put in place. Any failure, a broken stream included, removes the temporary file.
 */
import { lstat } from "node:fs/promises";
import type { FileInfo } from "../../../../../gen/devex/runner/v1/file_pb.js";
import { alreadyExists, dataLoss, failedPrecondition, resourceExhausted } from "../../../../../lib/kit/errors.js";
import { formatBytes } from "../../config.js";
import { lstatInfo } from "../../workspace/file-info.js";
import type { Workspace } from "../../workspace/paths.js";
import { StagedFile } from "../../workspace/staged-file.js";
import { ENTRY } from "./deps.js";

export interface ReceiveSpec {
  path: string;
  mode: number;
  overwrite: boolean;
  createParents: boolean;
  /** The declared size, when known. */
  size?: number;
  /** Lowercase hex, or "" for no check. */
  expectedSha256: string;
  /** A digest the client sends after the content (UploadFile's trailer), read once the content ended. */
  trailerSha256?: () => string | undefined;
}

export interface Received {
  info: FileInfo;
  sha256: string;
}

export async function receiveFile(
  ws: Workspace,
  spec: ReceiveSpec,
  content: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<Received> {
  const tooLarge = () =>
    resourceExhausted(`the file is larger than the upload limit of ${formatBytes(maxBytes)} (DEVEX_RUNNER_MAX_UPLOAD)`);
  if (spec.size !== undefined && spec.size > maxBytes) throw tooLarge();
  return ws.at(spec.path, { ...ENTRY, createParents: spec.createParents }, async (loc) => {
    const existing = await lstat(loc.path).catch(() => undefined);
    if (existing?.isDirectory()) throw failedPrecondition(`"${loc.rel}" is a directory`);
    if (existing && !spec.overwrite) throw alreadyExists(`"${loc.rel}" already exists: set overwrite to replace it`);
    const mode = spec.mode || (existing?.isFile() ? existing.mode & 0o777 : 0o644);
    const staged = await StagedFile.create(loc.dir, loc.name, mode);
    try {
      for await (const chunk of content) {
        await staged.write(chunk);
        if (staged.size > maxBytes) throw tooLarge();
        if (spec.size !== undefined && staged.size > spec.size)
          throw dataLoss(`received more than the ${spec.size} bytes the upload declared; nothing was written`);
      }
      if (spec.size !== undefined && staged.size !== spec.size)
        throw dataLoss(`received ${staged.size} of the ${spec.size} bytes the upload declared; nothing was written`);
      const sha256 = staged.digest();
      for (const expected of [spec.expectedSha256, spec.trailerSha256?.()]) {
        if (expected && expected !== sha256)
          throw dataLoss(`the content's SHA-256 is ${sha256}, not the expected ${expected}; nothing was written`);
      }
      await staged.commit(spec.overwrite);
      return { info: await lstatInfo(loc.path, loc.rel), sha256 };
    } catch (e) {
      await staged.discard();
      if ((e as NodeJS.ErrnoException).code === "EEXIST")
        throw alreadyExists(`"${loc.rel}" already exists: set overwrite to replace it`);
      throw e;
    }
  });
}
