/** The options and results of persist/restore, and the stored index format. */
import type { BlobStore } from "../blob/store.js";

/**
 * A file or symlink as a generation stores it. Unknown fields are kept for later formats. `mode` and
 * `mtimeMs` are absent in indexes written before they existed: such files restore with the default
 * mode (0644 under the usual umask) and the restore time.
 */
import type { TreeWatch } from "./tree-watch.js";

export interface RemoteFile {
  sha256: string;
  size: number;
  /** Permission bits (`st_mode & 0o1777`: setuid/setgid are never kept); regular files only. */
  mode?: number;
  /** Modification time, whole ms since the epoch; regular files only. */
  mtimeMs?: number;
  /** Packed files: the pack id and the offset of the content in it. */
  pack?: string;
  offset?: number;
  /** Loose files written since generations exist: the object id under `.devex-sync/objects/`.
   * A loose file without pack or object is an older index's object at `<prefix><rel>`. */
  object?: string;
  /** A symlink: its target text, never followed. `sha256` is the target's hash, `size` 0. */
  link?: string;
  /**
   * The prefix whose pack or object holds the content, when it is not the prefix of the record that
   * names the file: a fork's files still stored by the repl it was forked from (borrow.ts).
   */
  from?: string;
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
  /** Keys it needs under other prefixes (a fork's borrowed content), by prefix. */
  borrowed?: Record<string, string[]>;
}

/** A full map of a stored state: `.devex-sync/maps/<id>`, immutable, the base of later states. */
export interface MapRef {
  /** The key under the prefix that holds it (`from`, when it is another repl's). */
  key: string;
  from?: string;
}

/** A directory as a generation stores it (every one below the root, so empty ones come back). */
export interface RemoteDir {
  /** Permission bits (`st_mode & 0o1777`). */
  mode: number;
  /** Modification time, whole ms since the epoch. */
  mtimeMs: number;
}

/**
 * `.devex-sync/index.json` and `.devex-sync/generations/<n>.json` (the same body: the index is a copy
 * of the newest generation). Version 1 indexes (no generations) are read as generation 0. Version 3
 * is gzipped and names a base map: `files` and `dirs` then hold only what differs from it, and
 * `removed`/`removedDirs` what it has and this state has not (state.ts).
 */
export interface StoredIndex {
  version: 1 | 2 | 3;
  generation?: number;
  time?: number;
  files: Record<string, RemoteFile>;
  /** Every directory below the root (absent before directories were stored). */
  dirs?: Record<string, RemoteDir>;
  /** The kept generations, newest first, this one included. */
  generations?: GenerationInfo[];
  base?: MapRef;
  removed?: string[];
  removedDirs?: string[];
  /** The borrower record this prefix keeps at each prefix it borrows from (borrow.ts). */
  borrows?: Record<string, string>;
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
  /**
   * Paths left out: neither stored nor descended into. `rel` is the slash-separated path below the
   * root (".cache", ".npm/_cacache"); `kind` is what lstat saw ("file": anything that is neither a
   * directory nor a symlink). A path stored earlier and excluded now is dropped from the next generation.
   */
  exclude?: (rel: string, kind: "dir" | "file" | "link") => boolean;
  /**
   * The directory is the truth even without a manifest (a template's folder, not a restored
   * workspace): persist over whatever is stored instead of refusing.
   */
  replaceStored?: boolean;
  /** Also name the persisted state (checkpoints.ts); `SyncResult.checkpoint` says what was written. */
  checkpoint?: CheckpointRequest;
  /**
   * The tree's watch (tree-watch.ts), kept from one persist to the next: while it saw nothing change
   * since the last persist through it, persist skips the walk (and names the stored state for
   * `checkpoint`). Absent: every persist walks the whole tree.
   */
  watch?: TreeWatch;
}

/** What a checkpoint is asked to be. */
export interface CheckpointRequest {
  /** The id to use (a home checkpointed with its workspace takes the workspace's); default a new one. */
  id?: string;
  name?: string;
  message?: string;
  /** Why an automatic one was made ("before-stop", "before-restore", ...); absent: a user's. */
  auto?: string;
}

/** A checkpoint as listed: a named, immutable state of the stored tree. */
export interface CheckpointSummary extends CheckpointRequest {
  id: string;
  /** When it was made (ms since the epoch). */
  time: number;
  /** The generation it named when it was made. */
  generation: number;
  files: number;
  bytes: number;
}

export interface RestoreOptions extends SyncOptions {
  /** Every created directory, file and symlink (and the workspace directory itself) is chowned to it. */
  owner?: { uid: number; gid: number };
  /** An earlier kept generation (see `listGenerations`); default the newest. */
  generation?: number;
  /** A checkpoint's id instead (checkpoints.ts). */
  checkpoint?: string;
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
  /** Left out: files that cannot be stored under a blob key (odd names) and, on persist, FIFOs,
   * sockets and devices (their contents are not files). */
  skipped: string[];
  /** Persist: regular files with more than one hard link. Each path is stored as its own file, so a
   * restore brings them back as separate copies. */
  hardLinked: string[];
  /** The generation persisted or restored (0: the remote has no generations, e.g. fresh from a template). */
  generation: number;
  /** Persist with `checkpoint`: the checkpoint written. */
  checkpoint?: CheckpointSummary;
  ms: number;
}
