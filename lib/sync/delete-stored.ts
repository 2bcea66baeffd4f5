/**
 * Deleting a stored tree without breaking its forks. Its own borrower records at its lenders go
 * first (a lender that was itself deleted and lingers for it is then cleaned up). Then its keys go,
 * except those a borrower still names: the prefix lingers with only those, marked deleted, and the
 * borrower that releases the last of them deletes the rest (`collectLingering`).
 *
 * The marker is written before the borrower records are read, and a borrower deletes its record
 * before it looks for the marker, so one of the two always sees the other.
 */
import { listAll } from "../blob/store.js";
import { BORROWERS, borrowerDir } from "./borrow.js";
import { CHECKPOINTS, type StoredTree } from "./checkpoints.js";
import { checkPrefix, INDEX, SYNC_DIR } from "./remote.js";
import { readRoots, unneeded } from "./roots.js";
import { getRecord } from "./state.js";
import type { StoredIndex } from "./types.js";
import { forEachLimit, retry } from "./util.js";

export const DELETED = `${SYNC_DIR}/deleted`;

export interface DeletedTree {
  /** Objects deleted. */
  deleted: number;
  /** Objects kept because forks still use them. */
  lingering: number;
}

export async function deleteStored(t: StoredTree): Promise<DeletedTree> {
  checkPrefix(t.prefix);
  const attempts = t.attempts ?? 4;
  const index = await getRecord<StoredIndex>(t, t.prefix + INDEX, attempts);
  await forEachLimit(Object.keys(index?.borrows ?? {}), 4, (lender) => release(t, lender));
  await retry(attempts, t.signal, () => t.store.deletePrefix(t.prefix + CHECKPOINTS, t.signal));
  await retry(attempts, t.signal, () => t.store.put(t.prefix + DELETED, Buffer.from("{}"), t.signal));
  return collectLingering({ ...t, attempts });
}

/** Ends `t`'s borrowing from `lender`, and cleans the lender up if it was deleted meanwhile. */
async function release(t: StoredTree, lender: string) {
  const attempts = t.attempts ?? 4;
  await retry(attempts, t.signal, () => t.store.deletePrefix(lender + borrowerDir(t.prefix), t.signal));
  await collectIfDeleted({ ...t, attempts }, lender);
}

/** After a borrower record at `lender` went: a deleted lender lingering for it deletes what nobody needs now. */
export async function collectIfDeleted(t: Omit<StoredTree, "prefix">, lender: string) {
  const marker = await retry(t.attempts ?? 4, t.signal, () => t.store.get(lender + DELETED, t.signal));
  if (!marker) return;
  marker.resume();
  await collectLingering({ ...t, prefix: lender });
}

/**
 * A deleted tree: whatever no borrower record names goes; with no borrowers left, all of it. When a
 * record changed while being read, nothing is deleted this time (its borrower cleans up later).
 */
export async function collectLingering(t: StoredTree): Promise<DeletedTree> {
  const attempts = t.attempts ?? 4;
  const roots = await readRoots({ ...t, attempts });
  const listed = await retry(attempts, t.signal, () => listAll(t.store, t.prefix, t.signal));
  if (!roots) return { deleted: 0, lingering: listed.length };
  if (roots.borrowers === 0) {
    const deleted = await retry(attempts, t.signal, () => t.store.deletePrefix(t.prefix, t.signal));
    return { deleted, lingering: 0 };
  }
  const rels = listed.map((e) => e.key.slice(t.prefix.length));
  const gone = unneeded(rels, (k) => roots.own.has(k) || k.startsWith(BORROWERS) || k === DELETED);
  await forEachLimit(gone, 16, (k) =>
    retry(attempts, t.signal, () => t.store.deletePrefix(t.prefix + k, t.signal)).then(() => {}),
  );
  return { deleted: gone.length, lingering: rels.length - gone.length };
}
