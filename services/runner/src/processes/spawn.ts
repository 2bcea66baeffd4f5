/**
 * Spawning commands for Exec and background processes: in their own process group (detached), so
 * a timeout, a cancel or KillProcess can signal the whole group, grandchildren included. Both forms
 * run through bash: `shell` as `bash -c`, `argv` via `execLikeBash`, so a program that cannot run
 * ends like in a shell (exit 127 or 126 and bash's message) rather than as an RPC error.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import type { CommandSpec } from "../../../../gen/devex/runner/v1/process_pb.js";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import { killGroup } from "../../../../lib/kit/pids.js";
import { signalNumber } from "../signals.js";
import { withFsErrors } from "../workspace/fs-errors.js";
import type { Workspace } from "../workspace/paths.js";
import { execLikeBash } from "./exec-like-bash.js";

export interface ExitInfo {
  exitCode: number;
  signal: string;
  timedOut: boolean;
}

/** Where and how commands start. */
export interface SpawnContext {
  workspace: Workspace;
  /** Environment a command starts from, as of its start (the user's and the repl's variables). */
  /** The environment a process starts with, given what its request asks for. */
  baseEnv: (requested: Readonly<Record<string, string>>) => Promise<Record<string, string>> | Record<string, string>;
  /** Put before every command (a sandbox); see DEVEX_RUNNER_COMMAND_PREFIX. */
  commandPrefix: string[];
  /** The bash both forms run through, an absolute path: the command's own PATH need not hold one. */
  bash: string;
}

export async function spawnCommand(
  { workspace, baseEnv, commandPrefix, bash }: SpawnContext,
  spec: CommandSpec,
): Promise<ChildProcess> {
  const cwd = await workspace.resolve(spec.cwd);
  const st = await withFsErrors(cwd.rel, () => stat(cwd.abs));
  if (!st.isDirectory()) throw failedPrecondition(`cwd "${cwd.rel}" is not a directory`);
  const [file, ...args] = spec.argv;
  if (!spec.shell && !file)
    throw invalidArgument("command: set argv (program and arguments) or shell (a bash command line)");
  // $0 "bash", as when found on PATH: bash's own messages start with it.
  const command = spec.shell ? [bash, "-c", spec.shell, "bash"] : execLikeBash(bash, file, args);
  const argv = [...commandPrefix, ...command];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: cwd.abs,
    env: await baseEnv(spec.env),
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (e) => {
      // Only the runner's own programs (bash, the sandbox) are spawned here: the command's are exec'd by bash.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EACCES")
        reject(failedPrecondition(`cannot run commands: "${argv[0]}" is missing or not executable on the runner`));
      else reject(e);
    });
  });
  child.stdin?.on("error", () => {}); // EPIPE when the command does not read its input
  return child;
}

/** Resolves when the leader exited and its output pipes closed (or `lingerMs` after the leader exited). */
export function waitExit(child: ChildProcess, lingerMs: number): Promise<{ code: number | null; signal: string }> {
  return new Promise((resolve) => {
    let exit: { code: number | null; signal: string } | undefined;
    let closed = false;
    const done = () => exit && closed && resolve(exit);
    child.once("exit", (code, signal) => {
      exit = { code, signal: signal ?? "" };
      // A grandchild that keeps stdout open must not hold the call forever: end the group.
      setTimeout(() => {
        killGroup(child.pid!, "SIGKILL");
        closed = true;
        done();
      }, lingerMs).unref();
      done();
    });
    child.once("close", () => {
      closed = true;
      done();
    });
  });
}

export function exitInfo(code: number | null, signal: string, timedOut: boolean): ExitInfo {
  return { exitCode: code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 0), signal, timedOut };
}
