/**
 * The no-follow tree walk persist uses: every directory is opened relative to its parent's
 * descriptor with O_NOFOLLOW and listed through its own descriptor, so a directory swapped for a
 * symlink mid-walk fails its open (and is looked at once more as what it now is) instead of taking
 * the walk outside the tree. Depth-first (a LIFO of tasks) with at most `limit` tasks at once; a
 * directory's descriptor is closed as soon as its last entry is done, so open descriptors stay
 * around `limit` × depth on any tree. Each directory is reported from an fstat of its own open
 * descriptor, so what is reported is what was listed.
 */
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { isAtomicWriteTemp } from "../contracts/atomic-write.js";
import { isSwapped, listAt, lstatAt, openDirAt } from "./fsat.js";

export interface WalkEntry {
  /** Slash-separated path below the root. */
  rel: string;
  /** The parent directory's descriptor, open while the callback runs: use it (fsat.ts) to open `name`. */
  dirFd: number;
  name: string;
  /** lstat of the entry: anything but a directory (a regular file, symlink, FIFO, socket or device). */
  st: Stats;
}

interface Dir {
  fd: number;
  handle?: FileHandle;
  rel: string;
  refs: number;
}

type Task = () => Promise<Task[]>;

export interface WalkOptions {
  /** Tasks (listings and entries) at once. */
  limit: number;
  /** A top-level directory name left out (the reserved sync folder). */
  skipTop?: string;
  /** Paths left out, directories not descended into (see PersistOptions.exclude). */
  exclude?: (rel: string, kind: "dir" | "file" | "link") => boolean;
  /** Called for every directory below the root with the fstat of its open descriptor. */
  onDirectory?: (rel: string, st: Stats) => void;
  signal?: AbortSignal;
}

/**
 * Calls `onEntry` for everything but directories under the open directory `rootFd` (atomic writes
 * in flight are left out).
 */
export async function walkTree(
  rootFd: number,
  o: WalkOptions,
  onEntry: (e: WalkEntry) => Promise<void>,
): Promise<void> {
  const open = new Set<FileHandle>();
  const release = async (d: Dir) => {
    if (--d.refs > 0 || !d.handle) return;
    open.delete(d.handle);
    await d.handle.close();
  };

  const list =
    (d: Dir): Task =>
    async () => {
      try {
        const tasks: Task[] = [];
        for (const e of await listAt(d.fd)) {
          if (d.rel === "" && e.name === o.skipTop) continue;
          // A runner's atomic write in flight: its content arrives under the real name, or never.
          if (!e.isDirectory() && isAtomicWriteTemp(e.name)) continue;
          d.refs++;
          tasks.push(async () => {
            try {
              return await visit(d, e.name, e.isDirectory(), 2);
            } finally {
              await release(d);
            }
          });
        }
        return tasks;
      } finally {
        await release(d); // the listing's own reference
      }
    };

  const visit = async (d: Dir, name: string, isDir: boolean, tries: number): Promise<Task[]> => {
    const rel = d.rel ? `${d.rel}/${name}` : name;
    if (isDir) {
      if (o.exclude?.(rel, "dir")) return [];
      let handle: FileHandle;
      try {
        handle = await openDirAt(d.fd, name);
      } catch (e) {
        if (!isSwapped(e)) throw e;
        return tries > 1 ? visit(d, name, false, tries - 1) : []; // now a link or a file: take it as that
      }
      open.add(handle);
      o.onDirectory?.(rel, await handle.stat());
      return [list({ fd: handle.fd, handle, rel, refs: 1 })];
    }
    let st: Stats;
    try {
      st = await lstatAt(d.fd, name);
    } catch (e) {
      if (isSwapped(e)) return [];
      throw e;
    }
    if (st.isDirectory()) return tries > 1 ? visit(d, name, true, tries - 1) : [];
    if (!o.exclude?.(rel, st.isSymbolicLink() ? "link" : "file")) await onEntry({ rel, dirFd: d.fd, name, st });
    return [];
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const stack: Task[] = [list({ fd: rootFd, rel: "", refs: 1 })];
      let active = 0;
      let failure: { error: unknown } | undefined;
      const pump = () => {
        if (o.signal?.aborted) failure ??= { error: o.signal.reason };
        if (failure) {
          if (active === 0) reject(failure.error);
          return;
        }
        while (active < o.limit && stack.length) {
          const task = stack.pop()!;
          active++;
          task()
            .then(
              (more) => {
                stack.push(...more);
              },
              (error) => {
                failure ??= { error };
              },
            )
            .finally(() => {
              active--;
              pump();
            });
        }
        if (active === 0 && stack.length === 0) resolve();
      };
      pump();
    });
  } finally {
    // After a failure, directories whose entries never ran are still open.
    await Promise.all([...open].map((h) => h.close().catch(() => {})));
  }
}
