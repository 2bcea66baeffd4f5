/**
 * Spawning commands for Exec and background processes: in their own process group (detached), so
 * a timeout, a cancel or KillProcess can signal the whole group, grandchildren included.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import type { CommandSpec } from "../../../../gen/devex/runner/v1/process_pb.js";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import { killGroup } from "../../../../lib/kit/pids.js";
import { signalName } from "../terminals/session.js";
import { withFsErrors } from "../workspace/fs-errors.js";
import type { Workspace } from "../workspace/paths.js";

export interface ExitInfo {
  exitCode: number;
  signal: string;
  timedOut: boolean;
}

export async function spawnCommand(
  ws: Workspace,
  baseEnv: Record<string, string>,
  spec: CommandSpec,
  commandPrefix: string[] = [],
): Promise<ChildProcess> {
  const cwd = await ws.resolve(spec.cwd);
  const st = await withFsErrors(cwd.rel, () => stat(cwd.abs));
  if (!st.isDirectory()) throw failedPrecondition(`cwd "${cwd.rel}" is not a directory`);
  const [file, ...args] = spec.shell ? ["bash", "-c", spec.shell] : spec.argv;
  if (!file) throw invalidArgument("command: set argv (program and arguments) or shell (a bash command line)");
  const argv = [...commandPrefix, file, ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: cwd.abs,
    env: { ...baseEnv, ...spec.env },
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") reject(failedPrecondition(`program "${file}" was not found on PATH`));
      else if (code === "EACCES") reject(failedPrecondition(`program "${file}" is not executable`));
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

function signalNumber(name: string): number | undefined {
  for (let n = 1; n < 65; n++) if (signalName(n) === name) return n;
  return undefined;
}
