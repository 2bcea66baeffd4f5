/**
 * Forks: a new prefix whose first generation is a checkpoint of another, sharing its content.
 *
 * Nothing is copied but metadata: the fork's index names the checkpoint's base map and content where
 * they are (`from`, state.ts), after borrower records at each lender name every such key (borrow.ts),
 * so the lenders' garbage collection keeps them for as long as any state of the fork needs them.
 * From then on the two are independent: each persist of the fork stores what changed under the fork's
 * own prefix, and neither ever writes the other's content.
 *
 * The caller holds the parent's lock (the one a checkpoint's deletion takes) while a fork is made,
 * and the fork's prefix must hold nothing yet.
 */
import { borrowedBy, borrowerDir, writeBorrows } from "./borrow.js";
import { readCheckpoint, type StoredTree } from "./checkpoints.js";
import { CheckpointNotFoundError } from "./errors.js";
import { checkPrefix, generationKey, INDEX } from "./remote.js";
import { encodeJson, getRecord, rehomeAll, rehomeRef } from "./state.js";
import type { CheckpointSummary, GenerationInfo, StoredIndex } from "./types.js";
import { retry } from "./util.js";

export interface ForkOptions extends StoredTree {
  checkpoint: string;
  /** The new tree's prefix, ending in "/". */
  to: string;
}

/** Makes `to` a fork of checkpoint `checkpoint` of `prefix`; returns what it holds. */
export async function forkCheckpoint(
  o: ForkOptions,
): Promise<Omit<CheckpointSummary, "id" | "name" | "message" | "auto">> {
  checkPrefix(o.prefix);
  checkPrefix(o.to);
  if (o.to === o.prefix) throw new Error("a tree cannot be forked into itself");
  const attempts = o.attempts ?? 4;
  if (await getRecord(o, o.to + INDEX, attempts)) throw new Error(`${o.to} already holds a stored tree`);
  const c = await readCheckpoint(o, o.checkpoint);
  const rehomed = (keys: string[], lender: string) => (lender === o.to ? [] : [[lender, keys] as const]);
  const borrowed = Object.fromEntries([
    ...rehomed(c.objects, o.prefix),
    ...Object.entries(c.borrowed ?? {}).flatMap(([lender, keys]) => rehomed(keys, lender)),
  ]);
  const time = Date.now();
  const info: GenerationInfo = { generation: 1, time, files: c.files, bytes: c.bytes, objects: [], borrowed };
  const borrows = await writeBorrows({ ...o, attempts }, o.to, borrowedBy([info]));
  const s = c.state;
  const index: StoredIndex = {
    version: 3,
    generation: 1,
    time,
    files: rehomeAll(s.files, o.prefix, o.to),
    dirs: s.dirs,
    ...(s.base ? { base: rehomeRef(s.base, o.prefix, o.to) } : {}),
    removed: s.removed,
    removedDirs: s.removedDirs,
    generations: [info],
    borrows,
  };
  const body = encodeJson(index);
  await retry(attempts, o.signal, () => o.store.put(o.to + generationKey(1), body, o.signal));
  // The index last: until it is there, the fork is records nothing reads as a tree.
  await retry(attempts, o.signal, () => o.store.put(o.to + INDEX, body, o.signal));
  return { time, generation: 1, files: c.files, bytes: c.bytes };
}

/**
 * Undoes a fork that was cut short or is not wanted after all, before anything else used it: its
 * borrower records at every lender the checkpoint names (a half-made fork may have no index that
 * names them), then its whole prefix. A checkpoint that is gone leaves only the prefix to delete.
 */
export async function abandonFork(o: ForkOptions): Promise<void> {
  checkPrefix(o.prefix);
  checkPrefix(o.to);
  const attempts = o.attempts ?? 4;
  const c = await readCheckpoint(o, o.checkpoint).catch((e) =>
    e instanceof CheckpointNotFoundError ? undefined : Promise.reject(e),
  );
  const lenders = [o.prefix, ...Object.keys(c?.borrowed ?? {})].filter((l) => l !== o.to);
  for (const lender of lenders)
    await retry(attempts, o.signal, () => o.store.deletePrefix(lender + borrowerDir(o.to), o.signal));
  await retry(attempts, o.signal, () => o.store.deletePrefix(o.to, o.signal));
}
