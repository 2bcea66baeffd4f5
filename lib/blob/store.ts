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
import { DomainError, unavailable } from "../kit/errors.js";

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

/** A key that could escape a directory or confuse prefixes: a caller's bug, never retried. */
export class InvalidBlobKeyError extends Error {
  override name = "InvalidBlobKeyError";
  constructor(readonly key: string) {
    super(`invalid blob key: ${JSON.stringify(key)}`);
  }
}

/** Refuses keys that could escape a directory or confuse prefixes. */
export function checkKey(key: string): void {
  if (key.length === 0 || key.length > 1024 || key.includes("\0") || key.includes("\\") || key.startsWith("/")) {
    throw new InvalidBlobKeyError(key);
  }
  for (const part of key.split("/")) {
    if (part === "" || part === "." || part === "..") throw new InvalidBlobKeyError(key);
  }
}

/**
 * Runs a backend call with the store's error rule: domain errors, aborts and invalid keys pass as
 * they are; any other failure is the backend's and becomes Unavailable with `message` (the cause is
 * kept for the log, never shown to a client).
 */
export async function backendCall<T>(message: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DomainError || e instanceof InvalidBlobKeyError || (e as Error).name === "AbortError") throw e;
    throw unavailable(message, e);
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
