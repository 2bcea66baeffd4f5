/**
 * `devex cp -r`'s local side: a local directory as a tar stream (walked in path order, files
 * streamed, symlinks stored as links, anything else left out), and a tar stream from a runner
 * extracted into a local directory as carefully as the runner extracts ours: no absolute path, no
 * "..", nothing created through a symlink (each existing component is checked to be a real
 * directory), files written to a temporary file and renamed, modes without setuid/setgid.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, open, readdir, readlink, rename, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ByteReader } from "../../lib/archive/byte-reader.js";
import { entryComponents, paddingOf, readContent, readTar, tarEnd, tarHeader } from "../../lib/archive/tar.js";
import { CliError } from "./cli-error.js";

/** A local directory as tar bytes, its entries under `prefix` ("" for none). */
export async function* localTar(dir: string, prefix: string, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  if (prefix) yield tarHeader({ path: prefix, type: "directory", size: 0, mode: 0o755, mtime: Date.now() / 1000 });
  yield* walkDir(dir, prefix, onBytes);
  yield tarEnd();
}

async function* walkDir(dir: string, rel: string, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  for (const name of (await readdir(dir)).sort()) {
    const abs = join(dir, name);
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(abs);
    const base = { path, mode: st.mode & 0o777, mtime: st.mtimeMs / 1000 };
    if (st.isDirectory()) {
      yield tarHeader({ ...base, type: "directory", size: 0 });
      yield* walkDir(abs, path, onBytes);
    } else if (st.isSymbolicLink()) {
      yield tarHeader({ ...base, type: "symlink", size: 0, linkTarget: await readlink(abs) });
    } else if (st.isFile()) {
      yield tarHeader({ ...base, type: "file", size: st.size });
      let sent = 0;
      for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024, end: Math.max(0, st.size - 1) })) {
        if (st.size === 0) break;
        const b = chunk as Buffer;
        const use = b.subarray(0, Math.min(b.length, st.size - sent));
        sent += use.length;
        onBytes?.(use.length);
        yield use;
      }
      if (sent < st.size) yield Buffer.alloc(st.size - sent); // shrank while read: the header's size stands
      if (paddingOf(st.size)) yield Buffer.alloc(paddingOf(st.size));
    }
  }
}

/** Total bytes of the regular files below `dir` (for progress). */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const st = await lstat(join(dir, name));
    if (st.isDirectory()) total += await treeSize(join(dir, name));
    else if (st.isFile()) total += st.size;
  }
  return total;
}

/** Extracts a tar stream into `dest` (created if missing); returns the number of files written. */
export async function extractLocal(
  source: AsyncIterable<Uint8Array>,
  dest: string,
  onBytes?: (n: number) => void,
): Promise<number> {
  await mkdir(dest, { recursive: true });
  const reader = new ByteReader(source);
  let files = 0;
  for await (const entry of readTar(reader)) {
    let parts: string[];
    try {
      parts = entryComponents(entry.path);
    } catch (e) {
      throw new CliError(`the runner sent an unsafe archive: ${(e as Error).message}`);
    }
    if (parts.length === 0 || entry.type === "hardlink" || entry.type === "other") continue;
    const parent = await realDirs(dest, parts.slice(0, -1), entry.path);
    const target = join(parent, parts[parts.length - 1]);
    const existing = await lstat(target).catch(() => undefined);
    if (entry.type === "directory") {
      if (!existing) await mkdir(target, (entry.mode & 0o777) | 0o700);
      else if (!existing.isDirectory()) throw new CliError(`"${target}" exists and is not a directory`);
      continue;
    }
    if (existing?.isDirectory()) throw new CliError(`"${target}" is a directory; the archive has a file there`);
    if (existing) await unlink(target);
    if (entry.type === "symlink") {
      await symlink(entry.linkTarget ?? "", target);
      continue;
    }
    const temp = join(parent, `.${parts[parts.length - 1]}.devex-${randomBytes(6).toString("hex")}.tmp`);
    const fh = await open(temp, "wx", entry.mode & 0o777 || 0o644);
    try {
      for await (const chunk of readContent(reader, entry.size)) {
        await fh.write(chunk);
        onBytes?.(chunk.length);
      }
      await fh.close();
      await rename(temp, target);
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw e;
    }
    files++;
  }
  while (await reader.readSome(1024 * 1024)); // the padding after the end, and the stream's last message
  return files;
}

/** `dest/parts…`, each made if missing and each checked to be a real directory, never a symlink. */
async function realDirs(dest: string, parts: string[], path: string): Promise<string> {
  let dir = dest;
  for (const name of parts) {
    dir = join(dir, name);
    const st = await lstat(dir).catch(() => undefined);
    if (!st) await mkdir(dir, 0o755);
    else if (st.isSymbolicLink())
      throw new CliError(`the runner sent an unsafe archive: "${path}" passes through the symbolic link "${dir}"`);
    else if (!st.isDirectory()) throw new CliError(`"${dir}" exists and is not a directory`);
  }
  return dir;
}
