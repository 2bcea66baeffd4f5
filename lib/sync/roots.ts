/**
 * What a prefix's garbage collection must keep besides its kept generations: the keys its
 * checkpoints name, and the keys borrowers (forks) name in their records here.
 *
 * The order makes it safe without a lock shared with forks: checkpoints are read first, then
 * borrower records. A fork is made only from a checkpoint, under the repl's lock that a checkpoint's
 * deletion also takes; so a fork whose record this read missed was made from a checkpoint that was
 * still there when the checkpoints were read, and its keys are kept anyway. A record that was listed
 * but is gone when read was replaced meanwhile (borrow.ts): the result is then undefined and the
 * caller deletes nothing this time.
 */
import type { BlobStore } from "../blob/store.js";
import { listAll } from "../blob/store.js";
import { BORROWERS, type BorrowRecord } from "./borrow.js";
import { CHECKPOINTS, type CheckpointRecord } from "./checkpoints.js";
import { getRecord } from "./state.js";
import { forEachLimit, retry } from "./util.js";

export interface Roots {
  /** Keys under this prefix that checkpoints or borrowers need. */
  own: Set<string>;
  /** What this prefix's checkpoints need from lenders, by lender. */
  borrowed: Array<{ borrowed?: Record<string, string[]> }>;
  /** Borrower records found here. */
  borrowers: number;
}

interface Reader {
  store: BlobStore;
  prefix: string;
  signal?: AbortSignal;
  attempts: number;
}

/** Records are immutable: what a listed key held is what it holds. */
const parsed = new WeakMap<BlobStore, Map<string, { own: string[]; borrowed?: Record<string, string[]> }>>();

async function readAllUnder(r: Reader, dir: string, keep: Map<string, unknown>) {
  const listed = await retry(r.attempts, r.signal, () => listAll(r.store, r.prefix + dir, r.signal));
  const cache = parsed.get(r.store) ?? new Map();
  parsed.set(r.store, cache);
  const out: Array<{ own: string[]; borrowed?: Record<string, string[]> }> = [];
  let vanished = false;
  await forEachLimit(listed, 16, async ({ key }) => {
    let roots = cache.get(key);
    if (!roots) {
      const rec = await getRecord<CheckpointRecord & BorrowRecord>(r, key, r.attempts);
      if (!rec) {
        vanished = true;
        return;
      }
      roots = { own: rec.objects ?? rec.keys ?? [], borrowed: rec.borrowed };
      cache.set(key, roots);
    }
    keep.set(key, true);
    out.push(roots);
  });
  return vanished ? undefined : out;
}

export async function readRoots(r: Reader): Promise<Roots | undefined> {
  const seen = new Map<string, unknown>();
  const checkpoints = await readAllUnder(r, CHECKPOINTS, seen);
  if (!checkpoints) return undefined;
  const borrowers = await readAllUnder(r, BORROWERS, seen);
  if (!borrowers) return undefined;
  const cache = parsed.get(r.store)!;
  for (const key of cache.keys()) if (key.startsWith(r.prefix) && !seen.has(key)) cache.delete(key);
  const own = new Set<string>();
  for (const c of [...checkpoints, ...borrowers]) for (const k of c.own) own.add(k);
  return { own, borrowed: checkpoints, borrowers: borrowers.length };
}

/**
 * The keys to delete: those not `kept`, except one that starts another key (deleting is by prefix,
 * and sorted, the keys that start with a key follow it directly).
 */
export function unneeded(keys: string[], kept: (key: string) => boolean): string[] {
  const sorted = [...keys].sort();
  return sorted.filter((k, i) => !kept(k) && !sorted[i + 1]?.startsWith(k));
}
