/**
 * WatchFiles: fs.watch (recursive works on Linux since Node 20) debounced into batches. fs.watch
 * only says "rename" or "change", so each path is lstat'ed when the batch is flushed to tell
 * created, modified and deleted apart.
 */
import { watch } from "node:fs";
import { lstat } from "node:fs/promises";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { type FileEvent, FileEventSchema, FileEventType } from "../../../../gen/devex/runner/v1/file_pb.js";
import { isAtomicWriteTemp } from "./atomic-write.js";
import type { Workspace } from "./paths.js";

export async function* watchBatches(
  ws: Workspace,
  abs: string,
  recursive: boolean,
  signal: AbortSignal,
  debounceMs = 50,
): AsyncGenerator<FileEvent[]> {
  const seen = new Map<string, boolean>(); // rel → was a directory, for paths known to exist
  const pending = new Map<string, "rename" | "change">();
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const watcher = watch(abs, { recursive, signal }, (kind, name) => {
    if (name === null) return;
    const full = path.join(abs, name.toString());
    if (!ws.contains(full)) return;
    const rel = ws.relative(full);
    if (isAtomicWriteTemp(path.basename(rel))) return;
    pending.set(rel, pending.get(rel) === "rename" ? "rename" : kind);
    wake?.();
  });
  watcher.on("error", (e) => {
    failure = e;
    wake?.();
  });
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
        const st = await lstat(path.join(ws.root, rel)).catch(() => undefined);
        const known = seen.has(rel);
        if (st) {
          const type = known || kind === "change" ? FileEventType.MODIFIED : FileEventType.CREATED;
          seen.set(rel, st.isDirectory());
          events.push(create(FileEventSchema, { type, path: rel, isDirectory: st.isDirectory() }));
        } else {
          const wasDir = seen.get(rel) ?? false;
          seen.delete(rel);
          events.push(create(FileEventSchema, { type: FileEventType.DELETED, path: rel, isDirectory: wasDir }));
        }
      }
      if (events.length > 0) yield events;
    }
  } finally {
    watcher.close();
  }
}
