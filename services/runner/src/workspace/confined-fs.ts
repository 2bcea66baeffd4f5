/**
 * Descriptor-relative file operations: openat semantics without an openat binding. Node has no
 * `openat`, but `/proc/self/fd/<dirfd>/<name>` is the same thing for one component: the magic link
 * resolves to the directory that descriptor holds (wherever it has been renamed to, and whatever is
 * now at its old path), and only `<name>` is looked up in it, with O_NOFOLLOW applying to `<name>`.
 * Every helper here names entries as (directory descriptor, one component), so a symlink swapped
 * into a path after a check can never redirect the operation: the descriptors were opened
 * component by component with O_NOFOLLOW, and `<name>` itself is never followed.
 */
import { type BigIntStats, close, constants, fstat, open } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rmdir, symlink, unlink } from "node:fs/promises";
import { promisify } from "node:util";
import { failedPrecondition } from "../../../../lib/kit/errors.js";

/** O_PATH (Linux): a descriptor that only names a directory, needing search permission, not read. */
export const O_PATH = 0o10000000;
/** A directory, never through a symlink (ENOTDIR for one). */
export const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** O_NONBLOCK: opening a FIFO must not hang the call (it is then refused as not a regular file). */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export const openFd = promisify(open) as (path: string, flags: number, mode?: number) => Promise<number>;
export const closeFd = promisify(close);
const fstatFd = promisify(fstat);

/** The path of what descriptor `fd` holds (follows the magic link to exactly that file). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** The path of entry `name` (one component) in the directory held by `dir`. */
export function at(dir: number, name: string): string {
  return `${fdPath(dir)}/${name}`;
}

/** Opens directory `name` in `dir`; ENOTDIR when it is a symlink or not a directory. */
export function openDirAt(dir: number, name: string): Promise<number> {
  return openFd(at(dir, name), DIR_FLAGS);
}

/** Runs `use` with directory `name` of `dir` held open (never through a symlink). */
export async function withDirAt<T>(dir: number, name: string, use: (fd: number) => Promise<T>): Promise<T> {
  const fd = await openDirAt(dir, name);
  try {
    return await use(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Deletes entry `name` of `dir` with everything below it, descending only through descriptors. */
export async function removeTreeAt(dir: number, name: string): Promise<void> {
  const p = at(dir, name);
  try {
    await unlink(p); // a file or a symlink (removed, never followed)
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EISDIR") throw e;
  }
  await withDirAt(dir, name, async (fd) => {
    for (const child of await readdir(fdPath(fd))) await removeTreeAt(fd, child);
  });
  await rmdir(p); // a symlink swapped in meanwhile fails with ENOTDIR
}

/**
 * Copies entry `srcName` of `srcDir` to `dstName` of `dstDir`. Symlinks are copied as links,
 * directories recursively through descriptors, files by content from an O_NOFOLLOW descriptor into
 * a file created O_EXCL (so nothing is written through a link at the destination). With `overwrite`
 * an existing non-directory destination is removed first and existing directories are merged into.
 */
export async function copyTreeAt(
  srcDir: number,
  srcName: string,
  dstDir: number,
  dstName: string,
  overwrite: boolean,
  top = true,
): Promise<void> {
  const src = at(srcDir, srcName);
  const dst = at(dstDir, dstName);
  const st = await lstat(src, { bigint: true });
  if (st.isDirectory()) return copyDirAt(srcDir, srcName, dstDir, dstName, st, overwrite);
  if (st.isSymbolicLink()) {
    if (overwrite) await unlinkIfNotDir(dst);
    return symlink(await readlink(src), dst);
  }
  const fd = await openFd(src, READ_FLAGS);
  try {
    // Checked on the descriptor: copyFile would reopen a FIFO blocking and stall the thread pool.
    if (!(await fstatFd(fd)).isFile()) {
      if (!top) return; // FIFOs, sockets and devices inside a copied tree are left out
      throw failedPrecondition(`"${srcName}" is not a regular file (a FIFO, socket or device) and cannot be copied`);
    }
    if (overwrite) await unlinkIfNotDir(dst);
    // copyFile opens the source through the magic link (exactly this file) and the target O_EXCL.
    await copyFile(fdPath(fd), dst, constants.COPYFILE_EXCL);
  } finally {
    await closeFd(fd);
  }
}

async function copyDirAt(
  srcDir: number,
  srcName: string,
  dstDir: number,
  dstName: string,
  st: BigIntStats,
  overwrite: boolean,
): Promise<void> {
  const mode = Number(st.mode & 0o7777n);
  await mkdir(at(dstDir, dstName), mode).catch((e: NodeJS.ErrnoException) => {
    if (!(overwrite && e.code === "EEXIST")) throw e;
  });
  await withDirAt(srcDir, srcName, (from) =>
    withDirAt(dstDir, dstName, async (to) => {
      for (const child of await readdir(fdPath(from))) await copyTreeAt(from, child, to, child, overwrite, false);
      await chmod(fdPath(to), mode);
    }),
  );
}

async function unlinkIfNotDir(p: string): Promise<void> {
  const st = await lstat(p).catch(() => undefined);
  if (st && !st.isDirectory()) await unlink(p);
}
