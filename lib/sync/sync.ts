/**
 * Incremental workspace sync: a directory ⇄ a blob-store prefix (`repl/<user>/<replId>/`), used by
 * the local driver and, through cli.ts, by the Kubernetes init and persist containers.
 *
 * - persist.ts: uploads what changed as a new generation; refuses (WorkspaceMissingError,
 *   WorkspaceReplacedError) rather than delete stored files on evidence of an empty workspace that
 *   is really a missing, replaced or unmounted directory.
 * - restore.ts: downloads a generation (default the newest) into the emptied directory, optionally
 *   owned by the sandbox's uid.
 * - remote.ts: the stored layout (packs, objects, generations, the index) and `listGenerations`.
 * - walk.ts, fsat.ts: the tree is touched only through directory descriptors and no-follow opens,
 *   because core may run as root over a tree its user controls: a directory swapped for a symlink
 *   fails the open instead of leading outside. Symlinks are stored as links, never followed.
 * - manifest.ts: the local manifest (hashes by size/mtime/ctime, directory identity, remote state).
 * - meta.ts: what is kept besides content (mode bits without setuid/setgid, mtime), for files and
 *   for every directory, so empty ones come back.
 * - state.ts: a stored state as a base map plus what differs from it, gzipped.
 * - checkpoints.ts, fork.ts, borrow.ts, roots.ts, delete-stored.ts, diff.ts: named states, forks
 *   that share their parent's content, what garbage collection keeps for them, deleting a tree its
 *   forks still use, and what differs between two states.
 *
 * Concurrency: one persist or restore per directory at a time (the caller serialises); objects are
 * transferred in parallel with bounded concurrency, each retried with exponential backoff.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../blob/store.js";
import { isSwapped, openDirectory, openFileAt } from "./fsat.js";
import { SYNC_DIR } from "./remote.js";
import { restore } from "./restore.js";
import { walkTree } from "./walk.js";

export {
  type CheckpointRecord,
  checkpointMap,
  checkpointStored,
  deleteCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  type Retention,
  readCheckpoint,
  type StoredTree,
} from "./checkpoints.js";
export { collectLingering, deleteStored } from "./delete-stored.js";
export { diffMaps, type FileChange, unifiedDiff } from "./diff.js";
export {
  CheckpointNotFoundError,
  NothingStoredError,
  WorkspaceMissingError,
  WorkspaceReplacedError,
} from "./errors.js";
export { abandonFork, forkCheckpoint } from "./fork.js";
export { loadManifest, type Manifest, type ManifestEntry, manifestPathFor } from "./manifest.js";
export { persist } from "./persist.js";
export { listGenerations, type RemoteState, SYNC_DIR } from "./remote.js";
export { restore } from "./restore.js";
export { rollbackStored } from "./rollback.js";
export { TreeWatch } from "./tree-watch.js";
export type {
  CheckpointRequest,
  CheckpointSummary,
  GenerationSummary,
  PersistOptions,
  RemoteFile,
  RestoreOptions,
  SyncOptions,
  SyncProgress,
  SyncResult,
} from "./types.js";

/**
 * The workspace stored under a prefix, read the way `restore` reads it: rel → content of every
 * regular file (symlinks are left out). For tests and tools.
 */
export async function readStoredWorkspace(
  store: BlobStore,
  prefix: string,
  at?: number | { checkpoint: string },
): Promise<Map<string, Buffer>> {
  const which = typeof at === "object" ? at : { generation: at };
  const tmp = await mkdtemp(join(tmpdir(), "devex-sync-read-"));
  try {
    const dir = join(tmp, "ws");
    await restore({ store, prefix, dir, manifestPath: join(tmp, "m.json"), ...which });
    const out = new Map<string, Buffer>();
    const root = await openDirectory(dir);
    try {
      await walkTree(root.fd, { limit: 16, skipTop: SYNC_DIR }, async (e) => {
        if (!e.st.isFile()) return;
        const opened = await openFileAt(e.dirFd, e.name).catch((err) =>
          isSwapped(err) ? undefined : Promise.reject(err),
        );
        if (!opened) return;
        try {
          out.set(e.rel, await opened.fh.readFile());
        } finally {
          await opened.fh.close();
        }
      });
    } finally {
      await root.close();
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
