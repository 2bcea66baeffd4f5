/**
 * The blob store: template files and repl workspaces, as objects under slash-separated keys
 * (`templates/<name>/...`, `repl/<user>/<replId>/...`).
 *
 * Concurrency rules (checked by test/blob-contract.ts for every implementation):
 * - `put` is atomic per object: readers see the old or the new content, never a partial one.
 * - Prefix operations (`list`, `copyPrefix`, `deletePrefix`) are not atomic across objects; callers
 *   that need all-or-nothing (CreateRepl) roll back themselves. `deletePrefix` is idempotent.
 * - `list` pages are ordered by key; a page token continues after the last key returned.
 * - Every call takes an AbortSignal. Backend failures surface as DomainError "unavailable".
 */
import type { Readable } from "node:stream";

export interface BlobEntry {
  key: string;
  size: number;
}

export interface BlobPage {
  entries: BlobEntry[];
  /** Empty on the last page. */
  nextPageToken: string;
}

export interface BlobStore {
  put(key: string, body: Buffer | Readable, signal?: AbortSignal): Promise<void>;
  /** The object's content, or undefined when it does not exist. */
  get(key: string, signal?: AbortSignal): Promise<Readable | undefined>;
  list(prefix: string, page?: { pageToken?: string; pageSize?: number }, signal?: AbortSignal): Promise<BlobPage>;
  /** Deletes every object under the prefix; returns how many. */
  deletePrefix(prefix: string, signal?: AbortSignal): Promise<number>;
  /** Copies every object under `from` to the same relative key under `to`; returns how many. */
  copyPrefix(from: string, to: string, signal?: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/** Refuses keys that could escape a directory or confuse prefixes. */
export function checkKey(key: string): void {
  if (key.length === 0 || key.length > 1024 || key.includes("\0") || key.includes("\\") || key.startsWith("/")) {
    throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
  for (const part of key.split("/")) {
    if (part === "" || part === "." || part === "..") throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
}

/** Lists every key under a prefix, following pages. */
export async function listAll(store: BlobStore, prefix: string, signal?: AbortSignal): Promise<BlobEntry[]> {
  const out: BlobEntry[] = [];
  let pageToken = "";
  do {
    const page = await store.list(prefix, { pageToken, pageSize: 1000 }, signal);
    out.push(...page.entries);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}
