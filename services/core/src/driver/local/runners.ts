/**
 * The local driver's books: the runners it has assigned, each one's periodic persist, and how a
 * runner leaves them (released by a stop, forgotten after a failed start, buried after it died).
 * Once a runner is released a queued persist does nothing, so a periodic persist can never run
 * against a removed workspace.
 */
import { closeSync } from "node:fs";
import type { Logger } from "../../../../../lib/kit/log.js";
import { isAlive } from "../../../../../lib/kit/pids.js";
import { removeFolder } from "./runner-folder.js";
import { type Handle, serial } from "./runner-handle.js";
import type { RunnerSync } from "./runner-sync.js";

export interface RunnersOptions {
  log: Logger;
  sync: RunnerSync;
  /** Periodic persist while a runner runs; 0 turns it off (default 5 minutes). */
  persistIntervalMs?: number;
}

/** How long a persist that no caller waits for (periodic, after a death) may take. */
const backgroundPersistTimeoutMs = 10 * 60_000;

/** On the books and its process alive. */
export const isLive = (h: Handle) => !h.gone && isAlive(h.record.pid);

export class Runners {
  private readonly byRunner = new Map<string, Handle>();
  /** A dead runner's last persist, by repl: a new start of that repl restores only after it. */
  private readonly lastPersists = new Map<string, Promise<void>>();

  constructor(private readonly o: RunnersOptions) {}

  get(runnerId: string): Handle | undefined {
    return this.byRunner.get(runnerId);
  }

  /** Every runner on the books, released or not. */
  all(): Handle[] {
    return [...this.byRunner.values()];
  }

  /** The runners not released whose process is alive. */
  live(): Handle[] {
    return this.all().filter(isLive);
  }

  liveFor(replId: string): Handle | undefined {
    return this.all().find((h) => h.record.replId === replId && isLive(h));
  }

  add(h: Handle): void {
    this.byRunner.set(h.record.runnerId, h);
  }

  /** Settles once the last persist of the repl's dead runner (if any) is done. */
  async afterLastPersist(replId: string): Promise<void> {
    await this.lastPersists.get(replId);
  }

  /** Drops a runner from the books: its timer, its entry, its pinned socket, its network, its watches. */
  release(h: Handle): void {
    h.gone = true;
    h.network?.close();
    h.watches?.workspace.close();
    h.watches?.home?.close();
    h.watches = undefined;
    clearInterval(h.timer);
    this.byRunner.delete(h.record.runnerId);
    if (h.socketFd !== undefined) closeSync(h.socketFd);
    h.socketFd = undefined;
  }

  /**
   * Forgets a runner and removes its folder (its workspace with it). Queued behind any persist in
   * flight, so a persist never sees its workspace vanish halfway.
   */
  forget(h: Handle): Promise<void> {
    this.release(h);
    return serial(h, () => removeFolder(h.dir, this.o.log));
  }

  /**
   * A runner died. Every process of its sandbox died with it (it was their pid 1), so nothing
   * changes its workspace any more: persist what changed since the last persist, then remove it.
   */
  buryDead(h: Handle): void {
    const { replId } = h.record;
    this.release(h);
    const done = serial(h, async () => {
      await this.o.sync
        .persist(h, AbortSignal.timeout(backgroundPersistTimeoutMs))
        .catch((err) =>
          this.o.log.warn(
            { err, replId },
            "could not persist a dead runner's workspace: the repl keeps its last persisted state",
          ),
        );
      await removeFolder(h.dir, this.o.log);
    });
    this.lastPersists.set(replId, done);
    void done.finally(() => {
      if (this.lastPersists.get(replId) === done) this.lastPersists.delete(replId);
    });
  }

  /** Buries the runner when its process (our child) exits without a stop. */
  watchChild(h: Handle): void {
    h.child?.once("exit", (code, sig) => {
      if (h.gone) return;
      this.o.log.warn(
        { replId: h.record.replId, runnerId: h.record.runnerId, code, signal: sig },
        "runner process died",
      );
      this.buryDead(h);
    });
  }

  /** Persists the runner's workspace every `persistIntervalMs` while it is on the books. */
  startTimer(h: Handle): void {
    const every = this.o.persistIntervalMs ?? 5 * 60_000;
    if (every <= 0) return;
    h.timer = setInterval(() => {
      if (h.gone) return;
      // Checked again once its turn comes: a stop queued before it may have removed the workspace.
      void serial(h, async () => {
        if (!h.gone) await this.o.sync.persist(h, AbortSignal.timeout(backgroundPersistTimeoutMs));
      }).catch((err) => this.o.log.warn({ err, replId: h.record.replId }, "periodic persist failed; will retry"));
    }, every);
    h.timer.unref();
  }

  stopTimers(): void {
    for (const h of this.byRunner.values()) clearInterval(h.timer);
  }
}
