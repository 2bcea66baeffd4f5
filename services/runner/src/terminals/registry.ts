/** The repl's terminals: creates PTY sessions within the limit, finds and closes them. */

import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import path from "node:path";
import { spawn } from "@lydell/node-pty";
import { failedPrecondition, invalidArgument, notFound, resourceExhausted } from "../../../../lib/kit/errors.js";
import { execLikeBash, findBash } from "../processes/exec-like-bash.js";
import { withFsErrors } from "../workspace/fs-errors.js";
import type { Workspace } from "../workspace/paths.js";
import { loadXterm } from "./mirror.js";
import { clamp, TerminalSession } from "./session.js";

export interface TerminalRegistryDeps {
  workspace: Workspace;
  maxTerminals: number;
  scrollbackBytes: number;
  /** Environment a terminal starts from, as of its start: the user's (the runner's own secrets removed) and the repl's variables. */
  /** The environment a terminal starts with, given what its request asks for. */
  baseEnv: (requested: Readonly<Record<string, string>>) => Promise<Record<string, string>> | Record<string, string>;
  /** Put before every command (a sandbox); see DEVEX_RUNNER_COMMAND_PREFIX. */
  commandPrefix?: string[];
}

export interface CreateTerminalOptions {
  command: string[];
  cwd: string;
  env: Record<string, string>;
  cols?: number;
  rows?: number;
  name?: string;
}

/** Exited terminals kept for reading until closed; the oldest beyond this are forgotten. */
const MAX_EXITED = 32;

export class TerminalRegistry {
  private readonly sessions = new Map<string, TerminalSession>();
  /** Creations past the limit check but not yet in `sessions`: counted so that concurrent ones cannot overshoot. */
  private starting = 0;
  private counter = 0;

  constructor(private readonly deps: TerminalRegistryDeps) {}

  get running(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.exit) n++;
    return n;
  }

  list(): TerminalSession[] {
    return [...this.sessions.values()];
  }

  get(id: string): TerminalSession {
    const s = this.sessions.get(id);
    if (!s)
      throw notFound(`terminal "${id}" does not exist (it was closed, or never created): list terminals or create one`);
    return s;
  }

  /** Reserves a slot synchronously, before any await, and frees it if the creation fails. */
  async create(o: CreateTerminalOptions): Promise<TerminalSession> {
    const { maxTerminals } = this.deps;
    if (this.running + this.starting >= maxTerminals) {
      throw resourceExhausted(
        `too many terminals: the limit is ${maxTerminals} running terminals per repl (DEVEX_RUNNER_MAX_TERMINALS); close one first`,
      );
    }
    this.starting++;
    try {
      return await this.spawn(o);
    } finally {
      this.starting--;
    }
  }

  /** The bash commands start through (processes/exec-like-bash.ts). */
  private readonly bash = findBash() ?? "bash";

  private async spawn(o: CreateTerminalOptions): Promise<TerminalSession> {
    const { workspace, baseEnv, scrollbackBytes } = this.deps;
    const cwd = await workspace.resolve(o.cwd);
    const st = await withFsErrors(cwd.rel, () => stat(cwd.abs));
    if (!st.isDirectory()) throw failedPrecondition(`cwd "${cwd.rel}" is not a directory`);
    const [file, ...args] = o.command.length > 0 ? o.command : ["bash", "-l"];
    if (!file) throw invalidArgument("command[0] must name a program");
    await loadXterm();
    const id = `t${++this.counter}-${randomBytes(4).toString("hex")}`;
    // Like Exec: a program that cannot run ends like in bash (127/126 and its message on the screen).
    const argv = [...(this.deps.commandPrefix ?? []), ...execLikeBash(this.bash, file, args)];
    const pty = spawn(argv[0], argv.slice(1), {
      name: "xterm-256color",
      cols: clamp(o.cols ?? 80),
      rows: clamp(o.rows ?? 24),
      cwd: cwd.abs,
      env: {
        ...(await baseEnv({ TERM: "xterm-256color", COLORTERM: "truecolor", ...o.env })),
        DEVEX_TERMINAL_ID: id,
      },
      encoding: null,
    });
    const session = new TerminalSession({
      id,
      name: o.name || `${path.basename(file)} ${this.counter}`,
      command: [file, ...args],
      cwd: cwd.rel,
      pty,
      scrollbackBytes,
      onExit: () => this.pruneExited(),
    });
    this.sessions.set(id, session);
    return session;
  }

  async close(id: string): Promise<void> {
    const s = this.get(id);
    this.sessions.delete(id);
    await s.close();
  }

  async closeAll(graceMs = 500): Promise<number> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    const running = all.filter((s) => !s.exit).length;
    await Promise.all(all.map((s) => s.close(graceMs)));
    return running;
  }

  private pruneExited(): void {
    const exited = [...this.sessions.values()].filter((s) => s.exit);
    for (const s of exited.slice(0, Math.max(0, exited.length - MAX_EXITED))) this.sessions.delete(s.id);
  }
}
