/**
 * TreeWatch: knows, without walking, that nothing in a tree changed since a moment (a mark), so a
 * checkpoint of an unchanged running tree can skip the persist's walk.
 *
 * One inotify watch (fs.watch) per directory; every event of any kind counts as a change, so only
 * a counter is kept, never paths. Directories are opened relative to their parent's descriptor with
 * O_NOFOLLOW and watched through `/proc/self/fd/<fd>/.` (fsat.ts), so a directory swapped for a
 * symlink is never followed out of the tree.
 *
 * Why a mark can be trusted:
 * - `mark()` takes the counters first, then (when anything happened since the last scan, or an
 *   overflow may have hidden something) watches every directory the tree now has. A directory made
 *   during that scan makes an event after the mark in its watched parent, so the tree counts as
 *   changed; one that existed before the scan is watched before the walk that follows the mark
 *   starts, and the walk sees what changed in it until then.
 * - The kernel queues an event before the write, rename or chmod returns; `settle()` lets the event
 *   loop read the queue twice before the counter is compared, so a change made before a request
 *   reaches this process is counted.
 * - libuv drops the inotify queue's overflow event without a word (the kernel then drops events
 *   for good). The queue (fs.inotify.max_queued_events) is one per process; a full queue means at
 *   least that many events were queued, and they reach a TreeWatch once read, since TreeWatches are
 *   this process's only inotify users (core and the persist sidecar have no other fs.watch). So
 *   after half that many events since a mark, across all TreeWatches, that mark is not trusted and
 *   the next mark scans again (a dropped event may be a directory's creation). Events still queued
 *   for a watch closed meanwhile are dropped uncounted: old watches are closed only after a settle,
 *   and a TreeWatch is closed once its repl's processes are gone.
 * - A watch that errs leaves the TreeWatch broken: it never says unchanged again, and every
 *   persist walks, as without one. A scan the watch limit (or an unlistable directory) cuts short
 *   makes only that mark untrusted.
 *
 * Not seen, though a walk sees them by their mtime and ctime: writes through a shared mmap and
 * Linux native AIO (io_submit, as InnoDB uses), which raise no inotify event, and writes through a
 * hard link whose other name is not watched (an excluded directory, `.devex-sync/`). So only
 * checkpoints go through a TreeWatch; periodic persists and stops always walk, and a checkpoint's
 * walk-free path names the stored state only while it is the one this watch's last walk stored.
 */
import { type FSWatcher, readFileSync, watch } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { isSwapped, listAt, openDirAt, openDirectory } from "./fsat.js";
import { SYNC_DIR } from "./remote.js";
import type { SyncResult } from "./types.js";

/** Events delivered to every TreeWatch of this process: bounds what an overflow could have hidden. */
let delivered = 0;

function queueLimit(): number {
  try {
    return Number.parseInt(readFileSync("/proc/sys/fs/inotify/max_queued_events", "utf8"), 10) || 16384;
  } catch {
    return 16384;
  }
}
const TRUST_WITHIN = Math.floor(queueLimit() / 2);

/** Two turns of the event loop: inotify events queued before this call have been delivered after it. */
const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

export interface Mark {
  readonly changes: number;
  readonly delivered: number;
  /** Every directory was watched when it was taken. */
  readonly complete: boolean;
}

/** What the last full persist through this watch stored: reused while nothing changes. */
export interface Persisted {
  mark: Mark;
  prefix: string;
  /** The root directory's identity (manifest.ts identityOf). */
  root: string;
  generation: number;
  result: Omit<SyncResult, "ms" | "checkpoint">;
}

export class TreeWatch {
  private changes = 0;
  /** The counters taken before the last complete scan. */
  private scannedAt = { changes: -1, delivered: 0 };
  /** A watch erred: changes may have been missed, so it never says unchanged again. */
  private broken: Error | undefined;
  private lastScanFailure: Error | undefined;
  private closed = false;
  private watchers: FSWatcher[] = [];
  /** Set by persist after a full walk stored the tree as it was at `mark`. */
  persisted: Persisted | undefined;

  constructor(
    readonly dir: string,
    private readonly exclude?: (rel: string, kind: "dir") => boolean,
  ) {}

  /**
   * The moment a full walk starts from: every directory the tree has is watched when it resolves.
   * A mark whose scan failed (the watch limit, a directory it could not list) is never trusted; the
   * next mark scans again.
   */
  async mark(): Promise<Mark> {
    await settle();
    const taken = { changes: this.changes, delivered };
    let complete = !this.broken && !this.closed;
    const overflowed = delivered - this.scannedAt.delivered >= TRUST_WITHIN;
    if (complete && (this.scannedAt.changes !== taken.changes || overflowed)) {
      complete = await this.scan().then(
        () => true,
        (err: Error) => {
          this.lastScanFailure = err;
          return false;
        },
      );
      if (complete) this.scannedAt = taken;
    }
    return { ...taken, complete };
  }

  /** True only when nothing in the tree can have changed since `m`. */
  async unchangedSince(m: Mark): Promise<boolean> {
    await settle();
    return (
      m.complete && !this.broken && !this.closed && this.changes === m.changes && delivered - m.delivered < TRUST_WITHIN
    );
  }

  /** Why it can no longer say unchanged, if it cannot. */
  get failure(): Error | undefined {
    return this.broken ?? this.lastScanFailure;
  }

  close(): void {
    this.closed = true;
    this.persisted = undefined;
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  /**
   * Watches every directory the tree has now, then drops the watches of the scan before: a watch
   * kept across scans could name an inode a deleted directory left for a new one.
   */
  private async scan(): Promise<void> {
    const next: FSWatcher[] = [];
    try {
      await this.watchTree(await openDirectory(this.dir), next);
    } catch (err) {
      for (const w of next) w.close();
      throw err;
    }
    await settle(); // what is queued for the old watches is read before they close
    const old = this.watchers;
    this.watchers = next;
    for (const w of old) w.close();
    if (this.closed) this.close();
  }

  /**
   * Watches the directory `root` holds and every directory below it, depth first with a few at once
   * (a LIFO, as walk.ts): a directory stays open until its subdirectories are, no longer.
   */
  private async watchTree(root: FileHandle, into: FSWatcher[]): Promise<void> {
    type Dir = { fh: FileHandle; refs: number };
    const release = async (d: Dir) => {
      if (--d.refs === 0) await d.fh.close();
    };
    const top: Dir = { fh: root, refs: 1 };
    const stack: Array<{ parent: Dir; name: string; rel: string }> = [];
    const enter = async (d: Dir, rel: string) => {
      into.push(this.watchOne(d.fh.fd));
      for (const e of await listAt(d.fh.fd)) {
        if (!e.isDirectory()) continue; // the type the directory lists: a symlink is never entered
        const child = rel ? `${rel}/${e.name}` : e.name;
        if ((rel === "" && e.name === SYNC_DIR) || this.exclude?.(child, "dir")) continue;
        d.refs++;
        stack.push({ parent: d, name: e.name, rel: child });
      }
    };
    let failed = false;
    const worker = async () => {
      for (let next = stack.pop(); next; next = stack.pop()) {
        const { parent, name, rel } = next;
        try {
          if (failed) continue; // the scan has failed: only let go of what the stack holds
          // Gone or swapped since it was listed: its parent's watch saw that, so the tree has changed.
          // Anything else (EMFILE, EACCES...) leaves a subtree unwatched: the scan fails.
          const fh = await openDirAt(parent.fh.fd, name).catch((e) => (isSwapped(e) ? undefined : Promise.reject(e)));
          if (!fh) continue;
          const d: Dir = { fh, refs: 1 };
          try {
            await enter(d, rel);
          } finally {
            await release(d);
          }
        } catch (err) {
          failed = true;
          throw err;
        } finally {
          await release(parent);
        }
      }
    };
    try {
      await enter(top, "");
      // Workers that find the stack empty while others still list would stop early: loop until done.
      // Every worker is waited for, even after one failed, so none adds a watch after the scan ends.
      while (stack.length > 0) {
        const ends = await Promise.allSettled(Array.from({ length: Math.min(8, stack.length) }, worker));
        const failure = ends.find((e) => e.status === "rejected");
        if (!failure) continue;
        for (const left of stack.splice(0)) await release(left.parent);
        throw failure.reason;
      }
    } finally {
      await release(top);
    }
  }

  private watchOne(fd: number): FSWatcher {
    let w: FSWatcher;
    try {
      w = watch(`/proc/self/fd/${fd}/.`, { persistent: false }, () => {
        this.changes++;
        delivered++;
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw code === "ENOSPC" ? new Error("the inotify watch limit is reached: persists walk the whole tree") : err;
    }
    w.on("error", (err) => {
      this.broken ??= err;
    });
    return w;
  }
}
