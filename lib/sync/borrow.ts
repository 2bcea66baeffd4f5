/**
 * Borrowing: a fork keeps using its parent's stored content instead of copying it. Before anything of
 * the fork names a lender's key, the fork writes a borrower record in the lender's prefix,
 * `.devex-sync/borrowers/<the fork's prefix, URI-encoded>/<hash of the keys>.json`, listing those
 * keys; the lender's garbage collection keeps every key a borrower record names (roots.ts).
 *
 * Records are content-addressed and never rewritten: a borrower whose needs shrank writes the new
 * record, then its index (which names it in `borrows`), and only then deletes the old one, so at
 * every moment some record covers what any stored state of the borrower names. A lender's reader
 * that finds a listed record gone has raced such a replacement and skips its deletes that round.
 */
import { createHash } from "node:crypto";
import type { BlobStore } from "../blob/store.js";
import { SYNC_DIR } from "./remote.js";
import { encodeJson } from "./state.js";
import { forEachLimit, retry } from "./util.js";

export const BORROWERS = `${SYNC_DIR}/borrowers/`;
export const borrowerDir = (borrower: string) => `${BORROWERS}${encodeURIComponent(borrower)}/`;

export interface BorrowRecord {
  version: 3;
  /** The borrowing prefix. */
  borrower: string;
  /** Keys under the lender's prefix. */
  keys: string[];
}

interface Writer {
  store: BlobStore;
  signal?: AbortSignal;
  attempts: number;
}

/** The key (under the lender) of the record of `keys` for `borrower`. */
export function borrowKey(borrower: string, keys: Iterable<string>): string {
  const sorted = [...new Set(keys)].sort();
  const hash = createHash("sha256").update(sorted.join("\n")).digest("hex").slice(0, 32);
  return `${borrowerDir(borrower)}${hash}.json`;
}

/** Writes the records `borrower` needs at each lender that it does not already have; returns them all. */
export async function writeBorrows(
  w: Writer,
  borrower: string,
  needed: Map<string, Set<string>>,
  had: Record<string, string> = {},
): Promise<Record<string, string>> {
  const borrows: Record<string, string> = {};
  await forEachLimit([...needed], 8, async ([lender, keys]) => {
    if (keys.size === 0) return;
    const key = borrowKey(borrower, keys);
    borrows[lender] = key;
    if (had[lender] === key) return;
    const body = encodeJson({ version: 3, borrower, keys: [...keys].sort() } satisfies BorrowRecord);
    await retry(w.attempts, w.signal, () => w.store.put(lender + key, body, w.signal));
  });
  return borrows;
}

/** Deletes the records in `had` that `now` no longer names (after the index naming `now` is written). */
export async function dropBorrows(w: Writer, had: Record<string, string>, now: Record<string, string>) {
  const stale = Object.entries(had).filter(([lender, key]) => now[lender] !== key);
  await forEachLimit(stale, 8, ([lender, key]) =>
    retry(w.attempts, w.signal, () => w.store.deletePrefix(lender + key, w.signal)).then(() => {}),
  );
}

/** Every key a set of summaries needs from lenders, by lender. */
export function borrowedBy(summaries: Array<{ borrowed?: Record<string, string[]> }>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const s of summaries)
    for (const [lender, keys] of Object.entries(s.borrowed ?? {})) {
      const set = out.get(lender) ?? new Set<string>();
      for (const k of keys) set.add(k);
      out.set(lender, set);
    }
  return out;
}
