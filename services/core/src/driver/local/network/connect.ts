/**
 * The local driver's use of repl-network.ts: connect a runner's namespace when it is given its repl
 * (or re-adopted by a new core), and replace a pasta a previous core left behind. A network that
 * cannot be set up leaves the repl running without one: its rules (if in) or its empty namespace
 * keep everything in, and the log says why.
 */
import { readFile } from "node:fs/promises";
import { ALLOW_ALL, type EgressPolicy } from "../../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import { waitForExit } from "../../../../../../lib/kit/pids.js";
import type { EgressSetup } from "./egress.js";
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

/** Kills a pasta a previous core started for the namespace of `runnerPid` (checked by its command line). */
export async function killStalePasta(pastaPid: number | undefined, runnerPid: number): Promise<void> {
  if (!pastaPid) return;
  const cmdline = await readFile(`/proc/${pastaPid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes(`/proc/${runnerPid}/ns/net`)) return;
  try {
    process.kill(pastaPid, "SIGKILL");
  } catch {}
  // Its tap device goes with it; the new pasta makes its own.
  await waitForExit(pastaPid, 2000);
}
