/** The options and results of persist/restore, and the stored index format. */
import type { BlobStore } from "../../services/core/src/blob/store.js";

/** A file or symlink as a generation stores it. Unknown fields are kept for later formats (modes, empty dirs). */
export interface RemoteFile {
  sha256: string;
  size: number;
  /** Packed files: the pack id and the offset of the content in it. */
  pack?: string;
  offset?: number;
  /** Loose files written since generations exist: the object id under `.devex-sync/objects/`.
   * A loose file without pack or object is an older index's object at `<prefix><rel>`. */
  object?: string;
  /** A symlink: its target text, never followed. `sha256` is the target's hash, `size` 0. */
  link?: string;
}

/** One stored state of the workspace, as `listGenerations` reports it. */
export interface GenerationSummary {
  generation: number;
  /** When it was persisted (ms since the epoch). */
  time: number;
  files: number;
  bytes: number;
}

/** What the index keeps per generation: the summary and the objects it needs (keys under the prefix). */
export interface GenerationInfo extends GenerationSummary {
  objects: string[];
}

/**
 * `.devex-sync/index.json` and `.devex-sync/generations/<n>.json` (the same body: the index is a copy
 * of the newest generation). Version 1 indexes (no generations) are read as generation 0.
 */
export interface StoredIndex {
  version: 1 | 2;
  generation?: number;
  time?: number;
  files: Record<string, RemoteFile>;
  /** The kept generations, newest first, this one included. */
  generations?: GenerationInfo[];
}

export interface SyncProgress {
  phase: "restore" | "persist";
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface SyncOptions {
  store: BlobStore;
  /** Blob-store prefix ending in "/". */
  prefix: string;
  /** The workspace directory. */
  dir: string;
  /** Where the manifest lives; outside `dir` so users never see it. Defaults to `<dir>.manifest.json`. */
  manifestPath?: string;
  /** Objects transferred at once (default 16). */
  concurrency?: number;
  /** Attempts per object before giving up (default 4: waits 100, 400, 1600 ms between). */
  attempts?: number;
  signal?: AbortSignal;
  onProgress?: (p: SyncProgress) => void;
}

export interface PersistOptions extends SyncOptions {
  /** Generations the index keeps (default 5, at least 1); objects any of them needs are never deleted. */
  keepGenerations?: number;
}

export interface RestoreOptions extends SyncOptions {
  /** Every created directory, file and symlink (and the workspace directory itself) is chowned to it. */
  owner?: { uid: number; gid: number };
  /** An earlier kept generation (see `listGenerations`); default the newest. */
  generation?: number;
}

export interface SyncResult {
  files: number;
  bytes: number;
  /** Files uploaded (persist) or downloaded (restore). */
  transferred: number;
  transferredBytes: number;
  /** Files removed from the remote (persist). */
  deleted: number;
  /** Objects written or read. */
  objects: number;
  /** Files that cannot be stored under a blob key (odd names) and were left out. */
  skipped: string[];
  /** The generation persisted or restored (0: the remote has no generations, e.g. fresh from a template). */
  generation: number;
  ms: number;
}
