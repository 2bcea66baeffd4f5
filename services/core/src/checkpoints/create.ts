/**
 * CreateCheckpoint: a running repl's trees are persisted first (its programs keep running), then
 * the newest stored state of each is named (lib/sync checkpointStored, which stands against a
 * periodic persist racing it). A stopped repl's stored state is named as it is. Under the repl's
 * lock: no start, stop, restore or fork meanwhile.
 */
import { DomainError, failedPrecondition, unavailable } from "../../../../lib/kit/errors.js";
import { type CheckpointRequest, type CheckpointSummary, checkpointStored } from "../../../../lib/sync/sync.js";
import { getOwned, homePrefix, operationSignal, withReplLock, workspacePrefix } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import type { ReplRecord } from "../state/store.js";
import { prune } from "./retention.js";
import { api, homeTree, onHome, workspaceTree } from "./trees.js";

export function refuseUnlessSettled(r: ReplRecord | undefined) {
  if (!r) return;
  if (r.git?.status === "cloning") throw failedPrecondition(`repl ${r.replId} is being cloned; try again once cloned`);
  if (r.status !== "stopped" && r.status !== "running")
    throw failedPrecondition(`repl ${r.replId} is ${r.status}; try again once it runs or is stopped`);
}

/** Saves a running repl's trees now (Driver.persist); a stopped repl's are already stored. Under the lock. */
export async function persistIfRunning(deps: ReplDeps, r: ReplRecord): Promise<void> {
  const session = r.status === "running" ? await deps.state.getActiveSession(r.replId) : undefined;
  if (!session) return;
  const req = { replId: r.replId, owner: r.owner, runnerId: session.runnerId };
  await deps.driver
    .persist({ ...req, workspacePrefix: workspacePrefix(r), homePrefix: homePrefix(r) }, operationSignal(deps))
    .catch((err) => {
      throw err instanceof DomainError ? err : unavailable("could not save the repl's files; try again", err);
    });
}

/**
 * Names the newest stored state of both trees under one id, then applies retention, sparing the new
 * checkpoint and `spare` (a restore's target). lib/sync's errors pass as they are. Under the lock.
 */
export async function nameStored(
  deps: ReplDeps,
  r: ReplRecord,
  req: CheckpointRequest,
  spare: readonly string[] = [],
): Promise<CheckpointSummary> {
  const signal = operationSignal(deps);
  const made = await checkpointStored(workspaceTree(deps, r, signal), req);
  await onHome(() => checkpointStored(homeTree(deps, r, signal), { ...req, id: made.id }));
  await prune(deps, r, [made.id, ...spare], signal);
  deps.log.info({ replId: r.replId, checkpoint: made.id, auto: req.auto }, "checkpoint made");
  return made;
}

/** Checkpoints a repl whose lock the caller holds: its files saved first if it runs, then named. */
export async function checkpointLocked(
  deps: ReplDeps,
  r: ReplRecord,
  req: CheckpointRequest,
  spare: readonly string[] = [],
): Promise<CheckpointSummary> {
  refuseUnlessSettled(r);
  await persistIfRunning(deps, r);
  return api(r.replId, () => nameStored(deps, r, req, spare));
}

export async function createCheckpoint(
  deps: ReplDeps,
  owner: string,
  replId: string,
  req: CheckpointRequest,
  signal: AbortSignal,
): Promise<CheckpointSummary> {
  refuseUnlessSettled(await getOwned(deps, owner, replId));
  return withReplLock(deps, replId, signal, refuseUnlessSettled, async () =>
    checkpointLocked(deps, await getOwned(deps, owner, replId), req),
  );
}
