/**
 * Stopping a local runner: persist (the runner still fully usable if that fails) → Drain over
 * RunnerAdminService → persist what changed while draining → SIGTERM (SIGKILL after 5 s) → remove
 * its folder. Any persist failure throws Unavailable and leaves runner and workspace as they are;
 * the next stop tries again. Runs on the runner's queue (runner-handle.ts's serial).
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { runnerAdminClientFor } from "../../../../../lib/client/node.js";
import { Audience } from "../../../../../lib/contracts/runner-access.js";
import { unavailable } from "../../../../../lib/kit/errors.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import { isAlive, waitForExit } from "../../../../../lib/kit/pids.js";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import type { DriverProgress, StopRequest, StopResult } from "../driver.js";
import { removeFolder } from "./runner-folder.js";
import { type Handle, socketOf, urlOf } from "./runner-handle.js";
import type { RunnerSync } from "./runner-sync.js";
import type { Runners } from "./runners.js";

export interface StopDeps {
  log: Logger;
  sync: RunnerSync;
  runners: Runners;
  /** Mints the runner-admin token for Drain. */
  signer: TokenSigner;
}

export async function stopRunner(
  d: StopDeps,
  h: Handle,
  req: StopRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<StopResult> {
  const replId = h.record.replId;
  let persistTime = h.lastPersist ?? Date.now();
  if (req.persist !== false && req.workspacePrefix) {
    const failed = (err: unknown): never => {
      d.log.warn({ err, replId }, "persisting the workspace failed; the runner and its workspace stay");
      throw unavailable("persisting the workspace failed, so the repl keeps running; try stopping it again", err);
    };
    // First while the runner is fully usable, so a failure leaves the repl working.
    await d.sync.persist(h, signal, progress).catch(failed);
    await drain(d, h, req.reason).catch((err) => d.log.warn({ err, replId }, "drain failed; stopping anyway"));
    await d.sync.persist(h, signal, progress).catch(failed);
    persistTime = Date.now();
  }
  h.gone = true;
  await kill(h.record.pid);
  // Already on this runner's queue: remove the folder here rather than queueing behind ourselves.
  d.runners.release(h);
  await removeFolder(h.dir, d.log);
  d.log.info({ replId, runnerId: req.runnerId, reason: req.reason }, "runner stopped");
  return { persistTime };
}

async function drain(d: StopDeps, h: Handle, reason: string) {
  const token = d.signer.mint({ aud: Audience.runnerAdmin, sub: "core", repl: h.record.replId, scope: [] }, 300);
  const admin = runnerAdminClientFor(urlOf(h), { token, socketPath: socketOf(h) });
  await admin.drain({ reason, gracePeriod: durationFromMs(2000) }, { timeoutMs: 15_000 });
}

async function kill(pid: number) {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {}
  if (await waitForExit(pid, 5000)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  await waitForExit(pid, 1000);
}
