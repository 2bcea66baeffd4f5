/** FileInfo from lstat/stat results, and the opaque content version. */
import type { BigIntStats } from "node:fs";
import { lstat, readlink } from "node:fs/promises";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type FileInfo, FileInfoSchema, FileType } from "../../../../gen/devex/runner/v1/file_pb.js";

/**
 * Opaque version from (inode, size, mtime in ns). Writes are atomic renames, so every write through
 * the runner gets a new inode; edits by other programs change mtime or size.
 */
export function versionOf(st: BigIntStats): string {
  return `v1-${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
}

export function fileTypeOf(st: BigIntStats): FileType {
  if (st.isFile()) return FileType.FILE;
  if (st.isDirectory()) return FileType.DIRECTORY;
  if (st.isSymbolicLink()) return FileType.SYMLINK;
  return FileType.OTHER;
}

/** `entry` is the entry's path on disk (a descriptor-relative one from Location or walk). */
export async function infoFromStats(entry: string, rel: string, st: BigIntStats): Promise<FileInfo> {
  const type = fileTypeOf(st);
  return create(FileInfoSchema, {
    path: rel,
    name: rel === "" ? "" : path.posix.basename(rel),
    type,
    size: type === FileType.DIRECTORY ? 0n : st.size,
    mode: Number(st.mode & 0o7777n),
    modifyTime: timestampFromMs(Number(st.mtimeMs)),
    version: type === FileType.FILE ? versionOf(st) : "",
    symlinkTarget: type === FileType.SYMLINK ? await readlink(entry).catch(() => "") : "",
  });
}

/** Info of the entry itself (a symlink is described as a symlink). */
export async function lstatInfo(entry: string, rel: string): Promise<FileInfo> {
  return infoFromStats(entry, rel, await lstat(entry, { bigint: true }));
}
