/**
 * WatchFiles: one inotify watch (fs.watch) per directory, debounced into batches. fs.watch only
 * says "rename" or "change", so each path is lstat'ed when the batch is flushed to tell created,
 * modified and deleted apart.
 *
 * Node's own recursive fs.watch descends by path and so follows a directory swapped for a symlink
 * (into /tmp and its whole tree). Here every directory is opened relative to its parent's
 * descriptor with O_NOFOLLOW and watched through `/proc/self/fd/<fd>/.`, which names exactly the
 * directory opened; a symlink is reported as an entry but never watched or entered.
 */
import { type FSWatcher, watch } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { type FileEvent, FileEventSchema, FileEventType } from "../../../../gen/devex/runner/v1/file_pb.js";
import { failedPrecondition, resourceExhausted } from "../../../../lib/kit/errors.js";
import { isAtomicWriteTemp } from "./atomic-write.js";
import { fdPath, withDirAt } from "./confined-fs.js";
import type { Workspace } from "./paths.js";

export async function* watchBatches(
  ws: Workspace,
  input: string,
  recursive: boolean,
  signal: AbortSignal,
  debounceMs = 50,
): AsyncGenerator<FileEvent[]> {
  const seen = new Map<string, boolean>(); // rel → was a directory, for paths known to exist
  const pending = new Map<string, "rename" | "change">();
  const watchers = new Map<string, FSWatcher>(); // directory rel → its watcher
  let wake: (() => void) | undefined;
  let failure: Error | undefined;

  /** Watches the directory held by `fd` (named `rel`) and, when recursive, every directory below it. */
  async function watchTree(fd: number, rel: string): Promise<void> {
    if (watchers.has(rel) || signal.aborted) return;
    let watcher: FSWatcher;
    try {
      // "/." names the directory itself; its own events then carry the name "." (skipped below)
      watcher = watch(`${fdPath(fd)}/.`, { signal }, (kind, name) => {
        if (name === null || name === "." || isAtomicWriteTemp(name.toString())) return;
        const child = rel ? `${rel}/${name}` : name.toString();
        pending.set(child, pending.get(child) === "rename" ? "rename" : kind);
        wake?.();
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
      failure = resourceExhausted("too many directories to watch (the inotify watch limit): watch a smaller directory");
      return;
    }
    watcher.on("error", (e) => {
      failure = e;
      wake?.();
    });
    watchers.set(rel, watcher);
    if (!recursive) return;
    for (const entry of await readdir(fdPath(fd), { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue; // the type from the directory itself: a symlink is not one
      const name = entry.name;
      await withDirAt(fd, name, (child) => watchTree(child, rel ? `${rel}/${name}` : name)).catch(() => {});
    }
  }

  /** Stops watching `rel` and everything below it (deleted, or replaced by something else). */
  function unwatchTree(rel: string): void {
    for (const [dir, watcher] of watchers) {
      if (dir !== rel && !dir.startsWith(`${rel}/`)) continue;
      watcher.close();
      watchers.delete(dir);
    }
  }

  /** The entry at `rel` (never through a symlink), or undefined when it is gone or not reachable. */
  function lstatEntry(rel: string) {
    return ws.at(rel, { follow: "none" }, (loc) => lstat(loc.path)).catch(() => undefined);
  }

  const top = await ws.at(input, { follow: "all" }, (loc) =>
    withDirAt(loc.dir, loc.name, async (fd) => {
      await watchTree(fd, loc.realRel);
      return loc.realRel;
    }).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== "ENOTDIR") throw e;
      throw failedPrecondition(`"${loc.rel || "."}" is not a directory: watch its parent`);
    }),
  );
  if (failure) throw failure;
  const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  try {
    while (!signal.aborted) {
      if (pending.size === 0) {
        await Promise.race([new Promise<void>((r) => (wake = r)), aborted]);
        wake = undefined;
        if (failure) throw failure;
        if (signal.aborted) return;
        await Promise.race([new Promise((r) => setTimeout(r, debounceMs)), aborted]);
      }
      const batch = [...pending];
      pending.clear();
      const events: FileEvent[] = [];
      for (const [rel, kind] of batch) {
        const st = await lstatEntry(rel);
        const known = seen.has(rel);
        if (!st?.isDirectory() && rel !== top) unwatchTree(rel);
        if (st) {
          const type = known || kind === "change" ? FileEventType.MODIFIED : FileEventType.CREATED;
          seen.set(rel, st.isDirectory());
          events.push(create(FileEventSchema, { type, path: rel, isDirectory: st.isDirectory() }));
          if (st.isDirectory() && recursive && !watchers.has(rel)) {
            await ws
              .at(rel, { follow: "none" }, (loc) => withDirAt(loc.dir, loc.name, (fd) => watchTree(fd, rel)))
              .catch(() => {}); // gone or swapped for a link meanwhile: its own event follows
          }
        } else {
          const wasDir = seen.get(rel) ?? false;
          seen.delete(rel);
          events.push(create(FileEventSchema, { type: FileEventType.DELETED, path: rel, isDirectory: wasDir }));
        }
      }
      if (failure) throw failure;
      if (events.length > 0) yield events;
    }
  } finally {
    for (const watcher of watchers.values()) watcher.close();
  }
}
