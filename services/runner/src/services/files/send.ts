/**
 * Sending a file or a directory of any size, shared by DownloadFile, DownloadArchive and the HTTP
 * transfer route's GET: a file is read from one descriptor opened O_NOFOLLOW at the confined
 * location (a final symlink is followed only inside the workspace, like ReadFile), in chunks, and
 * hashed from byte 0; a directory is archived while it is walked (archive-walk.ts).
 */
import { createHash, type Hash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { FileInfo } from "../../../../../gen/devex/runner/v1/file_pb.js";
import { failedPrecondition, outOfRange } from "../../../../../lib/kit/errors.js";
import { CHUNK } from "../../workspace/archive-walk.js";
import { READ_FLAGS } from "../../workspace/confined-fs.js";
import { infoFromStats, versionOf } from "../../workspace/file-info.js";
import { fsError } from "../../workspace/fs-errors.js";
import type { Workspace } from "../../workspace/paths.js";
import { TARGET } from "./deps.js";

/** What a download found at its path: an open regular file, or a directory to archive. */
export type Source =
  | { kind: "file"; rel: string; fh: FileHandle; stats: BigIntStats; info: FileInfo }
  | { kind: "directory"; rel: string; fh: FileHandle; info: FileInfo };

/** Opens the path for a download; the caller closes `fh`. A directory's `fh` holds it for the walk. */
export async function openSource(ws: Workspace, path: string): Promise<Source> {
  return ws.at(path, TARGET, async (loc) => {
    const fh = await open(loc.path, READ_FLAGS);
    try {
      const stats = await fh.stat({ bigint: true });
      const info = await infoFromStats(loc.path, loc.rel, stats);
      if (stats.isDirectory()) return { kind: "directory", rel: loc.rel, fh, info };
      if (!stats.isFile()) throw failedPrecondition(`"${loc.rel}" is not a regular file (a device, socket or FIFO)`);
      return { kind: "file", rel: loc.rel, fh, stats, info };
    } catch (e) {
      await fh.close();
      throw e;
    }
  });
}

/**
 * A path naming the directory `fh` holds, for walks that start there: its "." (the magic link is
 * followed as a directory component; "." itself is no symlink, so O_NOFOLLOW opens it).
 */
export const heldPath = (fh: FileHandle) => `/proc/self/fd/${fh.fd}/.`;

export interface FileRange {
  offset: number;
  /** 0: to the end. */
  limit: number;
  expectedVersion: string;
}

/**
 * The file's bytes from `offset`, in chunks; `done` gets the whole file's SHA-256 when the range
 * reached its end (the bytes before `offset` are read and hashed first).
 */
export async function* fileChunks(
  src: Extract<Source, { kind: "file" }>,
  range: FileRange,
  done: (sha256: string | undefined) => void,
): AsyncGenerator<Buffer> {
  const size = Number(src.stats.size);
  if (range.expectedVersion && range.expectedVersion !== versionOf(src.stats))
    throw failedPrecondition(
      `"${src.rel}" changed since the download began (version ${versionOf(src.stats)}, not ${range.expectedVersion}): download it again from the start`,
    );
  if (range.offset > size) throw outOfRange(`offset ${range.offset} is past the end of "${src.rel}" (${size} bytes)`);
  const end = range.limit ? Math.min(size, range.offset + range.limit) : size;
  const hash = end === size ? createHash("sha256") : undefined;
  try {
    if (hash) await hashRange(src.fh, 0, range.offset, hash);
    for (let pos = range.offset; pos < end; ) {
      const want = Math.min(CHUNK, end - pos);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await src.fh.read(buf, 0, want, pos);
      if (bytesRead === 0)
        throw failedPrecondition(`"${src.rel}" shrank while it was being downloaded: download it again`);
      const chunk = bytesRead === want ? buf : buf.subarray(0, bytesRead);
      hash?.update(chunk);
      pos += bytesRead;
      yield chunk;
    }
  } catch (e) {
    throw fsError(e, src.rel);
  }
  done(hash?.digest("hex"));
}

async function hashRange(fh: FileHandle, from: number, to: number, hash: Hash) {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let pos = from; pos < to; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) throw failedPrecondition("the file shrank while it was being downloaded: download it again");
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}
