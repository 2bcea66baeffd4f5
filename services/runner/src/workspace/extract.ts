/**
 * Extracts a tar archive into a directory of the workspace, confined the way every file operation
 * is: each entry's path is checked before the disk is touched (no absolute path, no "..", no NUL),
 * then walked component by component from the target directory's descriptor, each directory opened
 * O_NOFOLLOW relative to its parent's (a symlink there, from the archive or swapped in by a repl
 * process meanwhile, fails the open and the entry is refused), and the entry is created by name in
 * the last descriptor: files through a StagedFile (temporary file, then rename or link), so each
 * appears whole or not at all. Devices, FIFOs and hard links are skipped; modes keep only 0777.
 */
import { lstat, mkdir, symlink, unlink } from "node:fs/promises";
import { ByteReader } from "../../../../lib/archive/byte-reader.js";
import {
  entryComponents,
  readContent,
  readTar,
  type TarEntryHeader,
  TarFormatError,
  UnsafeEntryError,
} from "../../../../lib/archive/tar.js";
import { alreadyExists, failedPrecondition, invalidArgument, resourceExhausted } from "../../../../lib/kit/errors.js";
import { at, closeFd, openDirAt } from "./confined-fs.js";
import { StagedFile } from "./staged-file.js";

export interface ExtractLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface ExtractResult {
  files: number;
  directories: number;
  symlinks: number;
  skipped: string[];
  bytes: number;
}

const MAX_SKIPPED_LISTED = 100;

/** An archive path's components, or InvalidArgument for one that could leave the directory. */
function componentsOf(path: string): string[] {
  try {
    return entryComponents(path);
  } catch (e) {
    if (e instanceof UnsafeEntryError) throw invalidArgument(e.message);
    throw e;
  }
}

/** Extracts the tar in `source` into the directory held by `rootFd`. */
export async function extractTar(
  source: AsyncIterable<Uint8Array>,
  rootFd: number,
  o: { overwrite: boolean; limits: ExtractLimits },
): Promise<ExtractResult> {
  const result: ExtractResult = { files: 0, directories: 0, symlinks: 0, skipped: [], bytes: 0 };
  const reader = new ByteReader(source);
  let entries = 0;
  try {
    for await (const entry of readTar(reader)) {
      if (++entries > o.limits.maxEntries)
        throw resourceExhausted(
          `the archive has more than ${o.limits.maxEntries} entries (DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES)`,
        );
      const parts = componentsOf(entry.path);
      if (parts.length === 0) continue; // "./": the directory itself
      if (entry.type === "hardlink" || entry.type === "other") {
        if (result.skipped.length < MAX_SKIPPED_LISTED) result.skipped.push(parts.join("/"));
        continue;
      }
      if (entry.type === "file" && result.bytes + entry.size > o.limits.maxBytes)
        throw resourceExhausted(
          `the archive holds more than ${o.limits.maxBytes} bytes, the upload limit (DEVEX_RUNNER_MAX_UPLOAD)`,
        );
      await withParent(rootFd, parts, entry.path, (dir, name) => place(dir, name, entry, reader, o.overwrite, result));
    }
    await drainTrailer(reader);
  } catch (e) {
    if (e instanceof TarFormatError) throw invalidArgument(`not a valid tar archive: ${e.message}`);
    throw e;
  }
  return result;
}

/** Tar writers pad an archive to a record size (10 KiB for GNU tar): zeros after the end blocks are read, anything else refused. */
async function drainTrailer(reader: ByteReader): Promise<void> {
  for (let seen = 0; ; ) {
    const b = await reader.readSome(64 * 1024);
    if (!b) return;
    seen += b.length;
    if (seen > 1024 * 1024 || b.some((x) => x !== 0)) throw new TarFormatError("data follows the end of the archive");
  }
}

/** Runs `use` with the descriptor of the entry's parent directory (created as needed) and its name. */
async function withParent<T>(
  rootFd: number,
  parts: string[],
  path: string,
  use: (dir: number, name: string) => Promise<T>,
): Promise<T> {
  const held: number[] = [];
  try {
    let dir = rootFd;
    for (const name of parts.slice(0, -1)) {
      dir = await enterDir(dir, name, path);
      held.push(dir);
    }
    return await use(dir, parts[parts.length - 1]);
  } finally {
    for (const fd of held) await closeFd(fd).catch(() => {});
  }
}

/** Opens (making it first if missing) directory `name` of `dir`, never through a symlink. */
async function enterDir(dir: number, name: string, path: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openDirAt(dir, name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && attempt < 3) {
        await mkdir(at(dir, name), 0o755).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "EEXIST") throw err;
        });
        continue;
      }
      if (code === "ENOTDIR" || code === "ELOOP") throw await notThrough(dir, name, path);
      throw e;
    }
  }
}

async function notThrough(dir: number, name: string, path: string): Promise<Error> {
  const st = await lstat(at(dir, name)).catch(() => undefined);
  return st?.isSymbolicLink()
    ? invalidArgument(`archive entry "${path}" passes through the symbolic link "${name}": refused`)
    : failedPrecondition(`archive entry "${path}": "${name}" exists and is not a directory`);
}

async function place(
  dir: number,
  name: string,
  entry: TarEntryHeader,
  reader: ByteReader,
  overwrite: boolean,
  result: ExtractResult,
): Promise<void> {
  const target = at(dir, name);
  if (entry.type === "directory") {
    await mkdir(target, (entry.mode & 0o777) | 0o700).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
      await closeFd(await enterDir(dir, name, entry.path)); // an existing directory is merged into; a symlink is refused
    });
    result.directories++;
    return;
  }
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory())
    throw failedPrecondition(`archive entry "${entry.path}" is a file where a directory exists`);
  if (existing && !overwrite) throw alreadyExists(`"${entry.path}" already exists: set overwrite to replace it`);
  if (entry.type === "symlink") {
    if (existing) await unlink(target);
    await symlink(entry.linkTarget ?? "", target);
    result.symlinks++;
    return;
  }
  const staged = await StagedFile.create(dir, name, entry.mode & 0o777 || 0o644);
  try {
    for await (const chunk of readContent(reader, entry.size)) await staged.write(chunk);
    await staged.commit(overwrite);
  } catch (e) {
    await staged.discard();
    if ((e as NodeJS.ErrnoException).code === "EEXIST")
      throw alreadyExists(`"${entry.path}" already exists: set overwrite to replace it`);
    throw e;
  }
  result.files++;
  result.bytes += entry.size;
}
