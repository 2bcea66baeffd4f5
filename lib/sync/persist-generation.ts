/**
 * A persist's last phases: the new generation, then the index (readers see the old or the new
 * state), then garbage: the objects no kept generation names.
 */
import type { PersistStore } from "./persist-store.js";
import { generationKey, INDEX, type RemoteState, summarize } from "./remote.js";
import type { GenerationInfo, RemoteDir, RemoteFile, StoredIndex } from "./types.js";
import { forEachLimit } from "./util.js";

export interface NewGeneration {
  n: number;
  files: Record<string, RemoteFile>;
  dirs: Record<string, RemoteDir>;
  /** Generations to keep, the new one included (at least 1). */
  keep: number;
}

/** Writes generation `g.n` and then the index; returns the kept generations, newest first. */
export async function writeGeneration(
  store: PersistStore,
  remote: RemoteState,
  g: NewGeneration,
): Promise<GenerationInfo[]> {
  const time = Date.now();
  let previous = remote.generations;
  if (remote.indexed && remote.generation === 0 && !previous.length && Object.keys(remote.files).length) {
    // A version 1 index becomes generation 0, so it stays restorable like any other.
    const legacy: StoredIndex = { version: 2, generation: 0, time: 0, files: remote.files };
    await store.put(generationKey(0), () => Buffer.from(JSON.stringify(legacy)), 0);
    previous = [summarize(0, 0, remote.files)];
  }
  const kept = [summarize(g.n, time, g.files), ...previous].slice(0, g.keep);
  const body = Buffer.from(
    JSON.stringify({
      version: 2,
      generation: g.n,
      time,
      files: g.files,
      dirs: g.dirs,
      generations: kept,
    } satisfies StoredIndex),
  );
  await store.put(generationKey(g.n), () => body, body.length);
  await store.put(INDEX, () => body, body.length);
  return kept;
}

/**
 * Deletes what no kept generation needs; returns the objects left. Deleting is by prefix, so a key
 * that starts another key ("a" vs "a.bak") is left (no index names it) rather than taking its
 * neighbours along.
 */
export async function collectGarbage(
  store: PersistStore,
  kept: GenerationInfo[],
  objects: Record<string, number>,
  concurrency: number,
): Promise<Record<string, number>> {
  const needed = new Set(kept.flatMap((g) => [...g.objects, generationKey(g.generation)]));
  // Sorted, the keys that start with a key follow it directly.
  const keys = Object.keys(objects).sort();
  const gone = keys.filter((k, i) => !needed.has(k) && !keys[i + 1]?.startsWith(k));
  await forEachLimit(gone, concurrency, (key) => store.deletePrefix(key));
  const left = { ...objects };
  for (const k of gone) delete left[k];
  return left;
}
