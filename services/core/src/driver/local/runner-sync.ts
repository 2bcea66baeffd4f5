/**
 * Restore and persist of a runner's two trees, always both: the workspace (`repl/<user>/<replId>/`)
 * and the home minus caches (`home/<user>/<replId>/`, lib/sync/home.ts), with their logs. A start
 * restores the home before the runner starts and the workspace while it starts; a persist saves the
 * workspace, then the home. The manifests live in the runner's folder, outside what its sandbox sees.
 */
import { join } from "node:path";
import type { BlobStore } from "../../../../../lib/blob/store.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import { excludeFromHome } from "../../../../../lib/sync/home.js";
import {
  persist,
  restore,
  type SyncProgress,
  type SyncResult,
  TreeWatch,
  WorkspaceMissingError,
  WorkspaceReplacedError,
} from "../../../../../lib/sync/sync.js";
import { someNames } from "../../../../../lib/sync/util.js";
import type { DriverProgress } from "../driver.js";
import type { Handle } from "./runner-handle.js";
import type { Owner } from "./sandbox.js";

export interface RunnerSyncOptions {
  blobs: BlobStore;
  log: Logger;
  /** Objects transferred at once (lib/sync's default when absent). */
  concurrency?: number;
  /** Attempts per object before a persist fails. */
  attempts?: number;
}

const manifestOf = (h: Handle) => join(h.dir, "manifest.json");
const homeManifestOf = (h: Handle) => join(h.dir, "home-manifest.json");

export class RunnerSync {
  /** When each repl was last persisted by this driver: what a stop of an already dead runner reports. */
  private readonly lastPersisted = new Map<string, number>();

  constructor(private readonly o: RunnerSyncOptions) {}

  persistedAt(replId: string): number | undefined {
    return this.lastPersisted.get(replId);
  }

  /**
   * Restores the repl's home into a fresh slot, owned by the sandbox's uid; nothing when the home is
   * not persisted. Before the runner starts: it seeds an empty home from /etc/skel.
   */
  async restoreHome(h: Handle, owner: Owner | undefined, signal: AbortSignal) {
    const { record } = h;
    if (!record.homePrefix) return;
    const home = await restore({
      ...this.common(owner, signal),
      prefix: record.homePrefix,
      dir: record.home!,
      manifestPath: homeManifestOf(h),
    });
    this.logSync("restored the home", record.replId, home);
  }

  /**
   * Restores the repl's workspace into a fresh slot, owned by the sandbox's uid. May run while the
   * runner starts: it opens the workspace's root and nothing below it until it is asked to.
   */
  async restoreWorkspace(
    h: Handle,
    owner: Owner | undefined,
    signal: AbortSignal,
    progress?: (p: DriverProgress) => void,
  ) {
    const { record } = h;
    const restored = await restore({
      ...this.common(owner, signal),
      prefix: record.workspacePrefix!,
      dir: record.workspace,
      manifestPath: manifestOf(h),
      onProgress: this.report(record.replId, progress),
    });
    this.logSync("restored", record.replId, restored);
  }

  private common(owner: Owner | undefined, signal: AbortSignal) {
    return { store: this.o.blobs, owner, concurrency: this.o.concurrency, attempts: this.o.attempts, signal };
  }

  /**
   * Persists a runner's workspace, then its home; returns undefined when lib/sync refuses because the
   * workspace is gone or is not the one restored (nothing stored is touched then, and there is
   * nothing to save). A home refused the same way is logged and kept as stored.
   *
   * "watched" (a checkpoint's, Driver.persist): through the trees' TreeWatches, which skip the walk
   * of a tree nothing changed in since the last watched persist. "full" (periodic persists, stops,
   * a dead runner's last persist): the whole walk, which also sees what no watch reports (writes
   * through a shared mmap or native AIO).
   */
  async persist(
    h: Handle,
    signal: AbortSignal,
    progress?: (p: DriverProgress) => void,
    how: "watched" | "full" = "full",
  ) {
    const { record } = h;
    const refused = (what: string) => (err: unknown) => {
      if (!(err instanceof WorkspaceMissingError || err instanceof WorkspaceReplacedError)) throw err;
      this.o.log.error({ err, replId: record.replId }, `persist refused: the stored ${what} is kept as it was`);
      return undefined;
    };
    const common = { store: this.o.blobs, concurrency: this.o.concurrency, attempts: this.o.attempts, signal };
    const watches = how === "watched" && !h.gone ? this.watchesOf(h) : undefined;
    const r = await persist({
      ...common,
      watch: watches?.workspace,
      prefix: record.workspacePrefix!,
      dir: record.workspace,
      manifestPath: manifestOf(h),
      onProgress: this.report(record.replId, progress),
    }).catch(refused("workspace"));
    if (!r) return undefined;
    this.logSync("persisted", record.replId, r);
    if (record.homePrefix && record.home) {
      const home = await persist({
        ...common,
        prefix: record.homePrefix,
        dir: record.home,
        manifestPath: homeManifestOf(h),
        exclude: excludeFromHome,
        watch: watches?.home,
      }).catch(refused("home"));
      if (home) this.logSync("persisted the home", record.replId, home);
    }
    h.lastPersist = Date.now();
    this.lastPersisted.set(record.replId, h.lastPersist);
    return r;
  }

  private watchesOf(h: Handle): NonNullable<Handle["watches"]> {
    const { record } = h;
    h.watches ??= {
      workspace: new TreeWatch(record.workspace),
      ...(record.homePrefix && record.home ? { home: new TreeWatch(record.home, excludeFromHome) } : {}),
    };
    return h.watches;
  }

  /** Forwards sync progress to core (WatchRepl) and logs long transfers every 2 s with counts and bytes. */
  private report(replId: string, progress?: (p: DriverProgress) => void) {
    let lastLog = Date.now();
    return (p: SyncProgress) => {
      progress?.({ ...p });
      if (Date.now() - lastLog < 2000 || p.filesDone === p.filesTotal) return;
      lastLog = Date.now();
      this.o.log.info(
        { replId, ...p },
        `${p.phase}: ${p.filesDone}/${p.filesTotal} files, ${p.bytesDone}/${p.bytesTotal} bytes`,
      );
    };
  }

  private logSync(what: string, replId: string, r: SyncResult) {
    this.o.log.info(
      {
        replId,
        files: r.files,
        bytes: r.bytes,
        transferred: r.transferred,
        transferredBytes: r.transferredBytes,
        deleted: r.deleted,
        skipped: r.skipped.length,
        ms: r.ms,
      },
      `${what}: ${r.transferred} files (${r.transferredBytes} bytes) of ${r.files} in ${r.ms} ms`,
    );
    // What did not come through as it is (lib/sync's rules), by name, so a user's question has an answer.
    if (r.skipped.length || r.hardLinked.length) {
      this.o.log.warn(
        { replId, skipped: someNames(r.skipped), hardLinked: someNames(r.hardLinked) },
        `${what}: ${r.skipped.length} special files or unstorable names left out, ${r.hardLinked.length} hard links kept as separate copies`,
      );
    }
  }
}
