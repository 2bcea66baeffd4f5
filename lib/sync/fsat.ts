/**
 * Descriptor-relative, no-follow file operations: Node has no openat, but `/proc/self/fd/<fd>/<name>`
 * resolves `<name>` inside the directory the descriptor holds open, whatever has been renamed or
 * swapped on the path to it since. With O_NOFOLLOW (and lstat/readlink/mkdir/symlink/unlink, which
 * never follow a last component) a symlink the user swapped in fails the call instead of being
 * followed. Every caller names one component at a time.
 */
import { constants, fchmod, type Stats } from "node:fs";
import {
  chmod,
  type FileHandle,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rmdir,
  symlink,
  unlink,
} from "node:fs/promises";
import { promisify } from "node:util";

const { O_RDONLY, O_WRONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_CREAT, O_EXCL } = constants;
/** O_PATH (Linux): a descriptor that names an inode without opening it for reading. */
const O_PATH = 0o10000000;
const fchmodAsync = promisify(fchmod);

/** The path that names `name` inside the directory open as `dirFd`. */
export const at = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

/** Errors that mean "the entry is not (or no longer) what we expected": gone, or swapped for a link or another kind (EINVAL: readlink of what is now a directory). */
export const isSwapped = (e: unknown) =>
  ["ENOENT", "ELOOP", "ENOTDIR", "EISDIR", "ENXIO", "EMLINK", "EINVAL"].includes(
    (e as NodeJS.ErrnoException).code ?? "",
  );

/** Opens a directory itself (a trusted path) without following a symlink as its last component. */
export async function openDirectory(path: string): Promise<FileHandle> {
  return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

export const openDirAt = (dirFd: number, name: string) => openDirectory(at(dirFd, name));

export const listAt = (dirFd: number) => readdir(`/proc/self/fd/${dirFd}`, { withFileTypes: true });

export const lstatAt = (dirFd: number, name: string): Promise<Stats> => lstat(at(dirFd, name));

export const readlinkAt = (dirFd: number, name: string) => readlink(at(dirFd, name));

/**
 * Opens a regular file for reading. Non-blocking so a FIFO cannot hang the open; anything the
 * descriptor shows is not a regular file (FIFO, device, socket) is closed unread: undefined.
 */
export async function openFileAt(dirFd: number, name: string): Promise<{ fh: FileHandle; st: Stats } | undefined> {
  const fh = await open(at(dirFd, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  try {
    const st = await fh.stat();
    if (st.isFile()) return { fh, st };
  } catch (e) {
    await fh.close();
    throw e;
  }
  await fh.close();
  return undefined;
}

/** Creates a new file (never an existing one, never through a link), optionally owned by `owner`. */
export async function createFileAt(dirFd: number, name: string, owner?: Owner): Promise<FileHandle> {
  const fh = await open(at(dirFd, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0o666);
  try {
    if (owner) await fh.chown(owner.uid, owner.gid);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export interface Owner {
  uid: number;
  gid: number;
}

/** Creates (or reuses) the directory `name` and opens it; a link in its place fails the open. */
export async function mkdirAt(dirFd: number, name: string, owner?: Owner): Promise<FileHandle> {
  let created = true;
  await mkdir(at(dirFd, name), 0o777).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "EEXIST") throw e;
    created = false;
  });
  const fh = await openDirAt(dirFd, name);
  try {
    if (created && owner) await fh.chown(owner.uid, owner.gid);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export async function symlinkAt(dirFd: number, name: string, target: string, owner?: Owner): Promise<void> {
  await symlink(target, at(dirFd, name));
  if (owner) await lchown(at(dirFd, name), owner.uid, owner.gid);
}

/**
 * Removes everything inside the open directory, descending by descriptor; a swapped-in link is
 * unlinked, never followed. A directory its owner made read-only (0555, as `go mod download`
 * leaves its cache) or unreadable (0000) is made the owner's again first, through its own
 * descriptor: a core that is not root owns the repl's files but has no capability to bypass modes.
 */
export async function emptyDirectory(dirFd: number): Promise<void> {
  let unlocked = false;
  for (const e of await listAt(dirFd)) {
    try {
      await removeAt(dirFd, e.name);
    } catch (err) {
      if (unlocked || !isDenied(err)) throw err;
      unlocked = true;
      await fchmodAsync(dirFd, 0o700);
      await removeAt(dirFd, e.name);
    }
  }
}

const isDenied = (e: unknown) => ["EACCES", "EPERM"].includes((e as NodeJS.ErrnoException).code ?? "");

/**
 * Opens a directory entry to remove its contents; one its owner cannot read or search is first
 * chmodded to 0700 through an O_PATH descriptor of that very directory (chmod of the descriptor's
 * /proc link acts on the inode it holds, so a name swapped meanwhile cannot redirect it).
 */
async function openForRemoval(dirFd: number, name: string): Promise<FileHandle> {
  try {
    return await openDirAt(dirFd, name);
  } catch (e) {
    if (!isDenied(e)) throw e;
  }
  const handle = await open(at(dirFd, name), O_PATH | O_DIRECTORY | O_NOFOLLOW);
  try {
    await chmod(`/proc/self/fd/${handle.fd}`, 0o700);
  } finally {
    await handle.close();
  }
  return openDirAt(dirFd, name);
}

async function removeAt(dirFd: number, name: string, tries = 3): Promise<void> {
  const path = at(dirFd, name);
  try {
    await unlink(path);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code !== "EISDIR" && code !== "EPERM") throw e;
  }
  let dir: FileHandle;
  try {
    dir = await openForRemoval(dirFd, name);
  } catch (e) {
    if (!isSwapped(e) || tries <= 1) throw e;
    return removeAt(dirFd, name, tries - 1); // swapped for a file or link meanwhile: unlink that
  }
  try {
    await emptyDirectory(dir.fd);
  } finally {
    await dir.close();
  }
  await rmdir(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
}
