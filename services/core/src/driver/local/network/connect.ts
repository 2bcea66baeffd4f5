/**
 * The local driver's use of repl-network.ts: connect a runner's namespace while it waits in the pool
 * (or when a new core re-adopts it), move it to its repl's policy when it is given one, and replace a
 * pasta a previous core left behind. A network that cannot be set up leaves the repl running without
 * one: its rules (if in) or its empty namespace keep everything in, and the log says why.
 */
import { ALLOW_ALL, type EgressPolicy, samePolicy } from "../../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import { waitForExit } from "../../../../../../lib/kit/pids.js";
import type { EgressSetup } from "./egress.js";
import { type PastaProcess, processStart } from "./pasta.js";
import { ReplNetwork } from "./repl-network.js";

export interface ConnectRequest {
  /** For the log; absent while the runner waits in the pool. */
  replId?: string;
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

/**
 * The network of a runner being given its repl: the one the pool connected ahead of time, under the
 * repl's policy (one nft transaction, only when it is another), else a new one. A pooled network
 * whose rules cannot be changed is closed, as its pool policy may allow more than the repl's.
 */
export async function networkForRepl(
  setup: EgressSetup | undefined,
  pooled: ReplNetwork | undefined,
  r: ConnectRequest,
  log: Logger,
  signal: AbortSignal,
): Promise<ReplNetwork | undefined> {
  if (pooled && !pooled.alive) {
    log.warn({ replId: r.replId }, "a pooled runner's network had stopped: connecting it again");
    pooled.close();
  }
  if (!pooled?.alive) return connectRepl(setup, r, log, signal);
  const policy = r.policy ?? ALLOW_ALL;
  if (samePolicy(pooled.currentPolicy, policy)) return pooled;
  try {
    await pooled.setPolicy(policy, signal);
    return pooled;
  } catch (err) {
    pooled.close();
    if (signal.aborted) throw err;
    log.warn({ err, replId: r.replId }, "the repl has no outbound network: applying its policy failed");
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
