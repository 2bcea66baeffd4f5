/**
 * A persist's last phases: the new generation, then the index (readers see the old or the new
 * state), then garbage: the objects that no kept generation, checkpoint or borrower names.
 */
import { BORROWERS, borrowedBy, dropBorrows, writeBorrows } from "./borrow.js";
import { CHECKPOINTS } from "./checkpoints.js";
import { collectIfDeleted } from "./delete-stored.js";
import type { PersistStore } from "./persist-store.js";
import { generationKey, INDEX, type RemoteState, summarize } from "./remote.js";
import { type Roots, readRoots, unneeded } from "./roots.js";
import { encodeJson, MAPS, newId, planState, type StateRecord } from "./state.js";
import type { GenerationInfo, PersistOptions, RemoteDir, RemoteFile, StoredIndex } from "./types.js";
import { forEachLimit } from "./util.js";

export interface NewGeneration {
  n: number;
  files: Record<string, RemoteFile>;
  dirs: Record<string, RemoteDir>;
  /** Generations to keep, the new one included (at least 1). */
  keep: number;
}

export interface WrittenGeneration {
  /** The kept generations, newest first. */
  kept: GenerationInfo[];
  state: StateRecord;
  borrows: Record<string, string>;
  /** What else garbage collection must keep; undefined: a record changed while read, delete nothing. */
  roots?: Roots;
}

/** The record of a state under the persist's prefix (a new base map when the difference is large). */
export function stateOf(
  o: PersistOptions,
  store: PersistStore,
  remote: RemoteState,
  files: Pick<NewGeneration, "files" | "dirs">,
) {
  return planState(o, o.prefix, files, remote.baseRef, store.attempts, async (body) => {
    const key = MAPS + newId();
    await store.put(key, () => body, body.length);
    return key;
  });
}

/** Writes generation `g.n` and then the index, with the borrower records its kept states need. */
export async function writeGeneration(
  o: PersistOptions,
  store: PersistStore,
  remote: RemoteState,
  g: NewGeneration,
): Promise<WrittenGeneration> {
  const time = Date.now();
  let previous = remote.generations;
  if (remote.indexed && remote.generation === 0 && !previous.length && Object.keys(remote.files).length) {
    // A version 1 index becomes generation 0, so it stays restorable like any other.
    const legacy: StoredIndex = { version: 2, generation: 0, time: 0, files: remote.files };
    await store.put(generationKey(0), () => Buffer.from(JSON.stringify(legacy)), 0);
    previous = [summarize(0, 0, remote.files)];
  }
  const state = await stateOf(o, store, remote, g);
  const kept = [summarize(g.n, time, g.files, state.base), ...previous].slice(0, g.keep);
  const roots = await readRoots({ ...o, attempts: store.attempts });
  const w = { store: o.store, signal: o.signal, attempts: store.attempts };
  const had = remote.borrows ?? {};
  // A persist only ever adds content of its own: without roots the old records still cover everything.
  const borrows = roots ? await writeBorrows(w, o.prefix, borrowedBy([...kept, ...roots.borrowed]), had) : had;
  const index: StoredIndex = { version: 3, generation: g.n, time, ...state, generations: kept, borrows };
  const body = encodeJson(index);
  await store.put(generationKey(g.n), () => body, body.length);
  await store.put(INDEX, () => body, body.length);
  if (roots) await dropBorrows(w, had, borrows);
  await forEachLimit(
    Object.keys(had).filter((lender) => !borrows[lender]),
    4,
    (lender) => collectIfDeleted(w, lender),
  );
  return { kept, state, borrows, roots };
}

/**
 * Deletes what no kept generation, checkpoint or borrower needs; returns the objects left. Deleting
 * is by prefix, so a key that starts another key ("a" vs "a.bak") is left (no index names it) rather
 * than taking its neighbours along. Checkpoint and borrower records are never garbage.
 */
export async function collectGarbage(
  store: PersistStore,
  written: WrittenGeneration,
  objects: Record<string, number>,
  concurrency: number,
): Promise<Record<string, number>> {
  const { kept, roots } = written;
  if (!roots) return objects;
  const needed = new Set(kept.flatMap((g) => [...g.objects, generationKey(g.generation)]));
  for (const k of roots.own) needed.add(k);
  const record = (k: string) => k.startsWith(CHECKPOINTS) || k.startsWith(BORROWERS);
  const gone = unneeded(Object.keys(objects), (k) => needed.has(k) || record(k));
  await forEachLimit(gone, concurrency, (key) => store.deletePrefix(key));
  const left = { ...objects };
  for (const k of gone) delete left[k];
  return left;
}
