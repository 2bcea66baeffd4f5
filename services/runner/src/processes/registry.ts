/**
 * Commands of the repl: Exec calls and background processes share one limit of concurrent
 * commands. Background processes buffer interleaved stdout/stderr in a bounded ring buffer.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants as osConstants } from "node:os";
import type { CommandSpec } from "../../../../gen/devex/runner/v1/process_pb.js";
import { invalidArgument, notFound, resourceExhausted } from "../../../../lib/kit/errors.js";
import { killGroup } from "../../../../lib/kit/pids.js";
import { RingBuffer } from "../ring-buffer.js";
import type { Workspace } from "../workspace/paths.js";
import { findBash } from "./exec-like-bash.js";
import { type ExitInfo, exitInfo, type SpawnContext, spawnCommand, waitExit } from "./spawn.js";

export interface ProcessRegistryDeps {
  workspace: Workspace;
  baseEnv: SpawnContext["baseEnv"];
  /** Put before every command (a sandbox); see DEVEX_RUNNER_COMMAND_PREFIX. */
  commandPrefix?: string[];
  maxProcesses: number;
  outputBytes: number;
}

export interface BackgroundProcess {
  id: string;
  name: string;
  spec: CommandSpec;
  pid: number;
  startTime: number;
  endTime?: number;
  exit?: ExitInfo;
  output: RingBuffer;
  child: ChildProcess;
  done: Promise<void>;
}

const MAX_EXITED = 50;
/** How long a finished leader's group may keep its output pipes open. */
export const LINGER_MS = 1000;

export class ProcessRegistry {
  private readonly background = new Map<string, BackgroundProcess>();
  private readonly execs = new Set<ChildProcess>();
  /** Spawns past the limit check but not yet in `execs`/`background`: counted so that concurrent ones cannot overshoot. */
  private starting = 0;
  private counter = 0;
  private readonly spawnContext: SpawnContext;

  constructor(private readonly deps: ProcessRegistryDeps) {
    const { workspace, baseEnv, commandPrefix = [] } = deps;
    // Elsewhere (no bash in the system directories) the command's PATH has to find one.
    const bash = findBash() ?? "bash";
    this.spawnContext = { workspace, baseEnv, commandPrefix, bash };
  }

  get running(): number {
    let n = this.execs.size;
    for (const p of this.background.values()) if (!p.exit) n++;
    return n;
  }

  /** Spawns a command for Exec, counted against the limit until `release`. */
  async spawnExec(spec: CommandSpec): Promise<{ child: ChildProcess; release: () => void }> {
    const child = await this.spawnCounted(spec, (c) => {
      this.execs.add(c);
      return c;
    });
    return { child, release: () => this.execs.delete(child) };
  }

  async start(spec: CommandSpec, name: string): Promise<BackgroundProcess> {
    return this.spawnCounted(spec, (child) => this.track(child, spec, name));
  }

  /**
   * Reserves a slot synchronously, before any await; `register` counts the child (in the same tick
   * as the reservation ends), and a failed spawn frees the slot.
   */
  private async spawnCounted<T>(spec: CommandSpec, register: (child: ChildProcess) => T): Promise<T> {
    this.checkLimit();
    this.starting++;
    try {
      const child = await spawnCommand(this.spawnContext, spec);
      return register(child);
    } finally {
      this.starting--;
    }
  }

  private track(child: ChildProcess, spec: CommandSpec, name: string): BackgroundProcess {
    child.stdin?.end();
    const id = `p${++this.counter}-${randomBytes(4).toString("hex")}`;
    const output = new RingBuffer(this.deps.outputBytes);
    const proc: BackgroundProcess = {
      id,
      name: name || (spec.shell || spec.argv.join(" ")).slice(0, 64),
      spec,
      pid: child.pid!,
      startTime: Date.now(),
      output,
      child,
      done: Promise.resolve(),
    };
    child.stdout?.on("data", (d: Buffer) => output.write(d));
    child.stderr?.on("data", (d: Buffer) => output.write(d));
    proc.done = waitExit(child, LINGER_MS).then(({ code, signal }) => {
      proc.exit = exitInfo(code, signal, false);
      proc.endTime = Date.now();
      this.pruneExited();
    });
    this.background.set(id, proc);
    return proc;
  }

  list(): BackgroundProcess[] {
    return [...this.background.values()];
  }

  get(id: string): BackgroundProcess {
    const p = this.background.get(id);
    if (!p) throw notFound(`process "${id}" does not exist: list processes to see the ids`);
    return p;
  }

  /** Signals a background process's group. */
  kill(id: string, signal: string): BackgroundProcess {
    const p = this.get(id);
    const sig = signal || "SIGTERM";
    if (!(sig in osConstants.signals))
      throw invalidArgument(`unknown signal "${sig}": use a name such as SIGTERM or SIGKILL`);
    if (!p.exit) killGroup(p.pid, sig as NodeJS.Signals);
    return p;
  }

  /** Ends everything: SIGTERM to every group, SIGKILL after the grace period. Returns how many ran. */
  async killAll(graceMs: number): Promise<number> {
    const running = [...this.execs].map((c) => ({ pid: c.pid!, done: waitGone(c) }));
    for (const p of this.background.values()) if (!p.exit) running.push({ pid: p.pid, done: p.done });
    for (const r of running) killGroup(r.pid, "SIGTERM");
    const timer = setTimeout(() => {
      for (const r of running) killGroup(r.pid, "SIGKILL");
    }, graceMs);
    await Promise.all(running.map((r) => r.done));
    clearTimeout(timer);
    for (const r of running) killGroup(r.pid, "SIGKILL");
    return running.length;
  }

  /** Process-group leaders of everything still running (for a last-resort kill at exit). */
  runningPids(): number[] {
    const pids = [...this.execs].map((c) => c.pid!);
    for (const p of this.background.values()) if (!p.exit) pids.push(p.pid);
    return pids;
  }

  private checkLimit(): void {
    if (this.running + this.starting >= this.deps.maxProcesses) {
      throw resourceExhausted(
        `too many commands running: the limit is ${this.deps.maxProcesses} concurrent commands and background processes per repl (DEVEX_RUNNER_MAX_PROCESSES); wait for one to finish or kill one`,
      );
    }
  }

  private pruneExited(): void {
    const exited = [...this.background.values()].filter((p) => p.exit);
    for (const p of exited.slice(0, Math.max(0, exited.length - MAX_EXITED))) this.background.delete(p.id);
  }
}

function waitGone(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => c.once("exit", () => resolve()));
}
