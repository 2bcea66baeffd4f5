/**
 * A warm pool of runner processes (runner-entry.ts) forked ahead of time, so a repl start costs an
 * IPC message and a listen instead of a Node start-up plus module loading (~1 s under tsx). Each
 * process gets its own folder under `runnersDir` with its log and record.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Logger } from "../../../../../lib/kit/log.js";

export interface RunnerRecord {
  procId: string;
  pid: number;
  state: "pool" | "assigned";
  runnerId?: string;
  replId?: string;
  owner?: string;
  workspacePrefix?: string;
  workspace?: string;
  port?: number;
  /** Set when the runner listens on a Unix socket (it runs in its own network namespace). */
  socketPath?: string;
}

export interface PooledProcess {
  procId: string;
  dir: string;
  child: ChildProcess;
  record: RunnerRecord;
}

/** The marker in a runner process's command line, checked before signalling a pid from a record. */
export const processMarker = "--devex-runner";

const REFILL_DELAY_MS = 500;

const entryFile = fileURLToPath(new URL("./runner-entry.ts", import.meta.url));

/** Runner processes run the TypeScript sources through tsx's loader, as core does. */
export function runnerExecArgv(): string[] {
  const tsx = dirname(createRequire(import.meta.url).resolve("tsx/package.json"));
  return ["--import", pathToFileURL(join(tsx, "dist/loader.mjs")).href];
}

export async function writeRecord(dir: string, record: RunnerRecord): Promise<void> {
  await writeFile(join(dir, "record.json"), JSON.stringify(record));
}

interface PoolEntry {
  p: PooledProcess;
  ready: Promise<void>;
  isReady: boolean;
}

export interface RunnerPoolOptions {
  runnersDir: string;
  size: number;
  /** The environment runner processes (and so user commands) start from: no core secrets. */
  env: Record<string, string>;
  /** Argv each runner process starts under (Sandbox.runnerWrapper(): its own network namespace). */
  wrapper?: string[];
  log: Logger;
}

export class RunnerPool {
  private readonly idle: PoolEntry[] = [];
  private spawning = 0;
  private closed = false;

  constructor(private readonly o: RunnerPoolOptions) {}

  /** Forks processes until `size` are ready or starting. */
  fill(): void {
    while (!this.closed && this.idle.length + this.spawning < this.o.size) {
      this.spawning++;
      this.spawn()
        .then((entry) => {
          if (this.closed) {
            entry.p.child.kill("SIGKILL");
            void rm(entry.p.dir, { recursive: true, force: true });
          } else this.idle.push(entry);
        })
        .catch((err) => this.o.log.warn({ err }, "could not fork a pooled runner"))
        .finally(() => this.spawning--);
    }
  }

  /** How many pooled processes are ready now. */
  readyCount(): number {
    return this.idle.filter((e) => e.isReady).length;
  }

  /** A ready process (a pooled one if there is one, else a fresh fork); the pool refills behind it. */
  async take(signal: AbortSignal): Promise<PooledProcess> {
    for (;;) {
      const e = this.idle.shift() ?? (await this.spawn());
      try {
        await abortable(e.ready, signal);
        if (e.p.child.exitCode === null && e.p.child.signalCode === null) {
          // Refill a moment later: forking and warming up a runner takes a core's worth of CPU for a
          // second, which should not compete with the start that just took this one.
          setTimeout(() => this.fill(), REFILL_DELAY_MS).unref();
          return e.p;
        }
      } catch (err) {
        e.p.child.kill("SIGKILL");
        if (signal.aborted) throw err;
      }
    }
  }

  /** Kills the pooled (unassigned) processes and removes their folders. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.idle.splice(0).map(async (e) => {
        e.p.child.kill("SIGKILL");
        await rm(e.p.dir, { recursive: true, force: true });
      }),
    );
  }

  private async spawn(): Promise<PoolEntry> {
    const procId = `p${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
    const dir = join(this.o.runnersDir, procId);
    await mkdir(dir, { recursive: true });
    const fd = openSync(join(dir, "runner.log"), "a");
    let child: ChildProcess;
    try {
      const w = this.o.wrapper;
      child = w?.length
        ? spawn(w[0], [...w.slice(1), process.execPath, ...runnerExecArgv(), entryFile, processMarker, procId, dir], {
            env: this.o.env,
            stdio: ["ignore", fd, fd, "ipc"],
            detached: true,
          })
        : fork(entryFile, [processMarker, procId, dir], {
            execArgv: runnerExecArgv(),
            env: this.o.env,
            stdio: ["ignore", fd, fd, "ipc"],
            detached: true,
          });
    } finally {
      closeSync(fd);
    }
    const record: RunnerRecord = { procId, pid: child.pid ?? 0, state: "pool" };
    await writeRecord(dir, record);
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { type?: string; pid?: number }) => {
        if (m?.type !== "ready") return;
        child.off("message", onMessage);
        // Under a wrapper the child is bwrap; signals and liveness checks go to the runner itself.
        if (m.pid) record.pid = m.pid;
        writeRecord(dir, record).then(resolve, reject);
      };
      child.on("message", onMessage);
      child.once("exit", (code, sig) => reject(new Error(`pooled runner exited early (${sig ?? code})`)));
    });
    const entry: PoolEntry = { p: { procId, dir, child, record }, ready, isReady: false };
    ready.then(
      () => {
        entry.isReady = true;
      },
      () => {},
    );
    child.once("exit", () => {
      const i = this.idle.indexOf(entry);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return entry;
  }
}

export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
