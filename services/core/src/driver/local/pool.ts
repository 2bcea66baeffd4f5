/**
 * A warm pool of runner processes (the runner's bundled dist/runner/pooled.mjs, forked by path) started
 * ahead of time, so a repl start costs an IPC message and a listen instead of a Node start-up, module
 * loading and a warm-up. Each process gets its own folder under `runnersDir`: its log, its
 * record and its slot — `workspace/` (the repl's project, restored there when the process is
 * assigned), `home/` (the repl's home, likewise), `run/` (its Unix socket) and `identity/` (the
 * passwd and group it sees, read-only) — which are all its sandbox sees of the host (sandbox.ts).
 * The slot belongs to the sandbox's uid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { chown, mkdir, readdir, readFile, rm } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { pooledRunnerArgs, type RunnerToPool } from "../../../../../lib/contracts/pooled-runner.js";
import { runnerNodeFlags } from "../../../../../lib/contracts/runner-node-flags.mjs";
import type { EgressPolicy } from "../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import { waitForExit } from "../../../../../lib/kit/pids.js";
import { projectRoot } from "../../../../../lib/kit/project-root.js";
import { replaceFile } from "../../../../../lib/kit/replace-file.js";
import { writeSandboxIdentity } from "./identity.js";
import type { PastaProcess } from "./network/pasta.js";
import type { ReplNetwork } from "./network/repl-network.js";
import type { Owner, RunnerLaunch, RunnerPaths } from "./sandbox.js";

export interface RunnerRecord {
  procId: string;
  /** The runner's own pid on the host (inside its sandbox it is pid 1). */
  pid: number;
  state: "pool" | "assigned";
  runnerId?: string;
  replId?: string;
  owner?: string;
  workspacePrefix?: string;
  /** The slot's workspace on the host. */
  workspace?: string;
  /** The slot's home on the host, and where the repl's home is stored (no prefix: not persisted). */
  home?: string;
  homePrefix?: string;
  port?: number;
  /** Set when the runner listens on a Unix socket (it runs in its own network namespace). */
  socketPath?: string;
  /** Its own host uid (core as root): it owns the slot; free again once the folder is gone. */
  uid?: number;
  /** The egress policy it runs under (a later core re-attaches its network with it). */
  egress?: EgressPolicy;
  /** The pasta process carrying its network (network/pasta.ts); a later core replaces it. */
  pasta?: PastaProcess;
}

export interface PooledProcess {
  procId: string;
  dir: string;
  child: ChildProcess;
  record: RunnerRecord;
  /** Host paths of its slot, and how the runner sees them. */
  slot: RunnerPaths;
  launch: RunnerLaunch;
  /** Its way out, connected while it waited (RunnerPoolOptions.connect); closed when it dies. */
  network?: ReplNetwork;
}

const REFILL_DELAY_MS = 500;

/** The runner's pooled entry point, bundled (scripts/build.mjs): core imports none of the runner's code. */
const runnerEntry = join(projectRoot, "dist/runner/pooled.mjs");

/** What a runner process needs of the project, read-only in its sandbox: its bundle and the PTY addon. */
export const runnerCode = ["dist/runner", "node_modules/@lydell"].map((p) => join(projectRoot, p));

/** Writes a runner's record whole or not at all: other claims and a restarted core read records at any time. */
export async function writeRecord(dir: string, record: RunnerRecord): Promise<void> {
  await replaceFile(join(dir, "record.json"), JSON.stringify(record));
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
  /** How a runner process starts around its slot (Sandbox.runnerLaunch with the driver's choices). */
  launch: (slot: Pick<RunnerPaths, "workspace" | "home" | "run" | "identity" | "owner">) => {
    slot: RunnerPaths;
    launch: RunnerLaunch;
  };
  /**
   * Connects a pooled runner's network namespace (its sandbox's pid 1) under the operator's default
   * policy while it warms up, so a start does not wait for pasta and nft (network/connect.ts).
   */
  connect?: (pid: number) => Promise<ReplNetwork | undefined>;
  /** The host uids slots are given, one each (core as root: Sandbox.uids). */
  uids?: { first: number; count: number };
  log: Logger;
}

export class RunnerPool {
  private readonly idle: PoolEntry[] = [];
  /** The uid claims, one after the other. */
  private claims: Promise<unknown> = Promise.resolve();
  /** Forks under way (fill's): close waits for them, so none leaves a process or a folder behind it. */
  private readonly forking = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly o: RunnerPoolOptions) {}

  /** Forks processes until `size` are ready or starting. */
  fill(): void {
    while (!this.closed && this.idle.length + this.forking.size < this.o.size) {
      const forked: Promise<void> = this.spawn()
        .then((entry) => (this.closed ? discard(entry.p) : void this.idle.push(entry)))
        .catch((err) => this.o.log.warn({ err }, "could not fork a pooled runner"))
        .finally(() => this.forking.delete(forked));
      this.forking.add(forked);
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
        void discard(e.p);
        if (signal.aborted) throw err;
      }
    }
  }

  /** Kills the pooled (unassigned) processes, those still being forked included, and removes their folders. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.idle.splice(0).map((e) => discard(e.p)), ...this.forking]);
  }

  /**
   * A uid of the range no runner folder holds (its record names it until the folder is removed),
   * written into a first record at once, so it stays taken across restarts too. One claim at a
   * time, so two spawns never read the same free uid.
   */
  private claimUid(dir: string, procId: string): Promise<Owner | undefined> {
    const range = this.o.uids;
    if (!range) return Promise.resolve(undefined);
    const claim = async () => {
      const taken = new Set<number>();
      for (const other of await readdir(this.o.runnersDir).catch(() => [] as string[])) {
        const uid = await readFile(join(this.o.runnersDir, other, "record.json"), "utf8").then(
          (t) => (JSON.parse(t) as RunnerRecord).uid,
          () => undefined,
        );
        if (uid !== undefined) taken.add(uid);
      }
      let uid = range.first;
      while (taken.has(uid)) uid++;
      if (uid >= range.first + range.count) throw new Error(`all ${range.count} sandbox uids are in use`);
      await writeRecord(dir, { procId, pid: 0, state: "pool", uid });
      return { uid, gid: uid };
    };
    const next = this.claims.then(claim, claim);
    this.claims = next.catch(() => undefined);
    return next;
  }

  private async spawn(): Promise<PoolEntry> {
    const procId = `p${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
    const dir = join(this.o.runnersDir, procId);
    await mkdir(dir, { recursive: true });
    const owner = await this.claimUid(dir, procId);
    for (const sub of ["workspace", "home", "run"]) {
      await mkdir(join(dir, sub), { mode: 0o700 });
      if (owner) await chown(join(dir, sub), owner.uid, owner.gid);
    }
    await writeSandboxIdentity(join(dir, "identity"));
    const paths = {
      workspace: join(dir, "workspace"),
      home: join(dir, "home"),
      run: join(dir, "run"),
      identity: join(dir, "identity"),
      owner,
    };
    const { slot, launch } = this.o.launch(paths);
    // A sandboxed runner warms up in its private /tmp; an unsandboxed one in its own folder.
    const scratch = launch.wrapper.length ? "/tmp" : dir;
    const argv = [
      ...launch.wrapper,
      process.execPath,
      ...runnerNodeFlags,
      runnerEntry,
      ...pooledRunnerArgs(procId, scratch),
    ];
    const fd = openSync(join(dir, "runner.log"), "a");
    let child: ChildProcess;
    try {
      child = spawn(argv[0], argv.slice(1), {
        env: this.o.env,
        stdio: ["ignore", fd, fd, "ipc", launch.infoFd ? "pipe" : "ignore"],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const record: RunnerRecord = { procId, pid: child.pid ?? 0, state: "pool", uid: owner?.uid };
    const p: PooledProcess = { procId, dir, child, record, slot, launch };
    const readyMessage = new Promise<void>((resolve, reject) => {
      const onMessage = (m: RunnerToPool) => {
        if (m?.type !== "ready") return;
        child.off("message", onMessage);
        resolve();
      };
      child.on("message", onMessage);
      child.once("exit", (code, sig) => reject(new Error(`pooled runner exited early (${sig ?? code})`)));
    });
    readyMessage.catch(() => {});
    child.once("exit", () => p.network?.close());
    const ready = (async () => {
      if (launch.infoFd) record.pid = await sandboxedPid(child);
      await writeRecord(dir, record);
      await this.connect(p);
      await readyMessage;
    })();
    const entry: PoolEntry = { p, ready, isReady: false };
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

  /** Connects the process's network and names its pasta in the record (a later core kills a stale one). */
  private async connect(p: PooledProcess): Promise<void> {
    // Only a sandboxed runner has a namespace of its own (its pid comes from bwrap's info fd).
    if (!this.o.connect || !p.launch.infoFd) return;
    try {
      p.network = await this.o.connect(p.record.pid);
    } catch (err) {
      // Too slow (its timeout): the process stays usable, and its start connects it (network/connect.ts).
      this.o.log.warn({ err, procId: p.procId }, "a pooled runner's network did not connect in time");
      return;
    }
    // Exited (or killed) while connecting: its network goes now, as nothing else will close it.
    if (p.child.exitCode !== null || p.child.signalCode !== null) p.network?.close();
    if (!p.network) return;
    p.record.pasta = p.network.pastaProcess;
    await writeRecord(p.dir, p.record);
  }
}

/**
 * The runner's host pid, as bwrap reports it on its info fd (the child itself is bwrap). The rest
 * of bwrap's report is read and dropped: closing the pipe early would kill bwrap with SIGPIPE halfway
 * through setting up the sandbox, leaving its half-made child waiting forever.
 */
function sandboxedPid(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = "";
    const info = child.stdio[4] as Socket;
    info.setEncoding("utf8");
    info.unref();
    info.on("data", (chunk: string) => {
      text += chunk;
      const pid = /"child-pid":\s*(\d+)/.exec(text)?.[1];
      if (pid) resolve(Number(pid));
    });
    info.on("error", () => {});
    child.once("exit", (code, sig) => reject(new Error(`sandboxed runner exited early (${sig ?? code})`)));
  });
}

/**
 * Kills a process the pool started, and its sandbox: SIGKILL to the runner (its sandbox's pid 1)
 * ends every process in the sandbox; the bwrap parents then exit.
 */
export async function killPooled(p: PooledProcess): Promise<void> {
  // Its network closes when the child exits (spawn's exit listener).
  for (const pid of [p.record.pid, p.child.pid]) {
    try {
      if (pid) process.kill(pid, "SIGKILL");
    } catch {}
  }
  await waitForExit(p.record.pid, 2000);
}

/** Kills a process the pool started and never handed out, and removes its folder. */
async function discard(p: PooledProcess): Promise<void> {
  await killPooled(p);
  await rm(p.dir, { recursive: true, force: true });
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
