/**
 * Restoring a stored tree to a checkpoint without a directory (a stopped repl): a new generation
 * whose state is the checkpoint's, so it is the newest and the next start restores it. The kept
 * generations before it stay, and so does every checkpoint; the checkpoint's record keeps its
 * content (and its borrower records the lenders') until the new generation's own roots take over at
 * the next persist. Nothing may persist the tree meanwhile (the caller holds its lock).
 */
import { readCheckpoint, type StoredTree } from "./checkpoints.js";
import { NothingStoredError } from "./errors.js";
import { generationKey, INDEX, readNewest } from "./remote.js";
import { encodeJson, resolveState } from "./state.js";
import type { StoredIndex } from "./types.js";
import { retry } from "./util.js";

/** Makes checkpoint `id` the newest generation; returns its number. */
export async function rollbackStored(t: StoredTree, id: string, keepGenerations = 5): Promise<number> {
  const attempts = t.attempts ?? 4;
  const c = await readCheckpoint(t, id);
  const newest = await readNewest(t, attempts);
  if (!newest) throw new NothingStoredError(t.prefix);
  const { index: current } = newest;
  const full = await resolveState(t, t.prefix, c.state, attempts);
  const n = (current.generation ?? 0) + 1;
  const time = Date.now();
  const info = { generation: n, time, files: Object.keys(full.files).length, bytes: c.bytes, objects: c.objects };
  const kept = [{ ...info, ...(c.borrowed ? { borrowed: c.borrowed } : {}) }, ...(current.generations ?? [])].slice(
    0,
    Math.max(1, keepGenerations),
  );
  const index: StoredIndex = {
    version: 3,
    generation: n,
    time,
    ...c.state,
    generations: kept,
    ...(current.borrows ? { borrows: current.borrows } : {}),
  };
  const body = encodeJson(index);
  await retry(attempts, t.signal, () => t.store.put(t.prefix + generationKey(n), body, t.signal));
  await retry(attempts, t.signal, () => t.store.put(t.prefix + INDEX, body, t.signal));
  return n;
}
