/**
 * `devex exec`: one command through the runner's Exec stream; its stdout, stderr and exit code are
 * ours. The stream is gRPC, or Connect over HTTP/1.1 where HTTP/2 is not available (transport.ts).
 */
import { constants } from "node:os";
import type { Writable } from "node:stream";
import type { ProcessExit } from "../../gen/devex/runner/v1/process_pb.js";
import { describeError } from "./errors.js";
import { begun, type RunnerLink } from "./transport.js";

export interface ExecOptions {
  argv: string[];
  cwd?: string;
  timeoutSeconds?: number;
  stdin?: Buffer;
}

export async function execCommand(
  runner: RunnerLink,
  o: ExecOptions,
  io: { stdout: Writable; stderr: Writable },
): Promise<number> {
  let exit: ProcessExit | undefined;
  try {
    const request = {
      command: { argv: o.argv, cwd: o.cwd ?? "" },
      timeout: o.timeoutSeconds ? { seconds: BigInt(Math.ceil(o.timeoutSeconds)) } : undefined,
      stdin: o.stdin,
    };
    // Exec's first event (`started`) comes at once, so a failed HTTP/2 connection shows before it.
    const stream = await runner.call((clients) => begun(clients.processes.exec(request)));
    for await (const m of stream) {
      if (m.event.case === "stdout") await write(io.stdout, m.event.value);
      else if (m.event.case === "stderr") await write(io.stderr, m.event.value);
      else if (m.event.case === "exit") exit = m.event.value;
    }
  } catch (e) {
    throw describeError(e);
  }
  if (!exit) throw describeError(new Error("the command's output ended without an exit status"));
  if (exit.timedOut) io.stderr.write(`devex: timed out after ${o.timeoutSeconds}s\n`);
  return exitCodeOf(exit);
}

/** The shell convention: the exit code, or 128 + the signal's number. */
export function exitCodeOf(exit: { exitCode: number; signal: string }): number {
  if (exit.signal) return 128 + (constants.signals[exit.signal as keyof typeof constants.signals] ?? 0);
  return exit.exitCode;
}

function write(out: Writable, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(data, (err) => (err ? reject(err) : resolve()));
  });
}
