/** Small helpers shared by persist and restore: retries, bounded concurrency, progress, hashing. */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { sleep } from "../kit/sleep.js";
import type { SyncOptions, SyncProgress } from "./types.js";

export const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function retry<T>(attempts: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || (e as Error).name === "AbortError" || signal?.aborted) throw e;
      await sleep(100 * 4 ** (i - 1), signal);
    }
  }
}

/** Runs `fn` over items with at most `limit` at once; the first failure stops new work and is thrown after the rest settle. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** At most `limit` holders at once; `run` waits for a free slot. */
export function semaphore(limit: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** Progress callbacks at most every 100 ms (and always at the end). Totals may grow while work is found. */
export function progressOf(phase: SyncProgress["phase"], cb?: SyncOptions["onProgress"]) {
  const p: SyncProgress = { phase, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  let last = 0;
  const emit = (force = false) => {
    const now = Date.now();
    if (!cb || (!force && now - last < 100)) return;
    last = now;
    cb({ ...p });
  };
  emit(true);
  return {
    plan(files: number, bytes: number) {
      p.filesTotal += files;
      p.bytesTotal += bytes;
    },
    add(files: number, bytes: number) {
      p.filesDone += files;
      p.bytesDone += bytes;
      emit();
    },
    done: () => emit(true),
  };
}

/** The first `max` names of a list, joined, and how many more there are: a log line of bounded length. */
export function someNames(names: string[], max = 20): string {
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
