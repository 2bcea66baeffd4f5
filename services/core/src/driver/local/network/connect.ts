/**
 * The local driver's use of repl-network.ts: connect a runner's namespace when it is given its repl
 * (or re-adopted by a new core), and replace a pasta a previous core left behind. A network that
 * cannot be set up leaves the repl running without one: its rules (if in) or its empty namespace
 * keep everything in, and the log says why.
 */
import { ALLOW_ALL, type EgressPolicy } from "../../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import { waitForExit } from "../../../../../../lib/kit/pids.js";
import type { EgressSetup } from "./egress.js";
import { type PastaProcess, processStart } from "./pasta.js";
import { ReplNetwork } from "./repl-network.js";

export interface ConnectRequest {
  replId: string;
  /** The runner's host pid (its sandbox's pid 1, in the namespace). */
  pid: number;
  policy?: EgressPolicy;
}

export async function connectRepl(
  setup: EgressSetup | undefined,
  r: ConnectRequest,
  log: Logger,
  signal: AbortSignal,
): Promise<ReplNetwork | undefined> {
  if (!setup) return undefined;
  try {
    return await ReplNetwork.attach(setup, { pid: r.pid, policy: r.policy ?? ALLOW_ALL, signal });
  } catch (err) {
    if (signal.aborted) throw err;
    log.warn({ err, replId: r.replId }, "the repl has no outbound network: setting it up failed");
    return undefined;
  }
}

/** Kills the pasta a previous core started (the same pid and start time), whose ports lead to that core. */
export async function killStalePasta(pasta: PastaProcess | undefined): Promise<void> {
  if (!pasta || processStart(pasta.pid) !== pasta.start) return;
  try {
    process.kill(pasta.pid, "SIGKILL");
  } catch {}
  // Its tap device goes with it; the new pasta makes its own.
  await waitForExit(pasta.pid, 2000);
}
