/**
 * RestoreCheckpoint: the repl's files go back to a checkpoint's. The current ones are checkpointed
 * first ("before-restore"), so the restore can be undone. A stopped repl is restored in storage alone
 * (lib/sync rollbackStored: a new newest generation, metadata only); a running one is stopped (its
 * files saved), restored so, and started again.
 */
import { failedPrecondition } from "../../../../lib/kit/errors.js";
import { type CheckpointSummary, readCheckpoint, rollbackStored } from "../../../../lib/sync/sync.js";
import { getOwned, operationSignal, withReplLock } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import type { RunnerUser } from "../repl/start.js";
import { startRepl } from "../repl/start.js";
import { stopRepl } from "../repl/stop.js";
import type { ReplRecord } from "../state/store.js";
import { checkpointLocked, refuseUnlessSettled } from "./create.js";
import { api, homeTree, onHome, workspaceTree } from "./trees.js";

export async function restoreCheckpoint(
  deps: ReplDeps,
  user: RunnerUser,
  replId: string,
  checkpointId: string,
  signal: AbortSignal,
): Promise<{ repl: ReplRecord; undo: CheckpointSummary }> {
  const r = await getOwned(deps, user.userId, replId);
  refuseUnlessSettled(r);
  const target = await api(replId, () => readCheckpoint(workspaceTree(deps, r, signal), checkpointId));
  const wasRunning = r.status === "running";
  // Its own before-restore checkpoint names what the stop saves.
  if (wasRunning) await stopRepl(deps, user.userId, replId, signal, "restoring a checkpoint", false);
  const refuse = (x: ReplRecord | undefined) => {
    refuseUnlessSettled(x);
    if (x && x.status !== "stopped") throw failedPrecondition(`repl ${replId} was started again meanwhile; try again`);
  };
  const undo = await withReplLock(deps, replId, signal, refuse, async () => {
    const locked = await getOwned(deps, user.userId, replId);
    refuse(locked);
    const name = `before restoring ${target.name || checkpointId}`;
    const before = await checkpointLocked(deps, locked, { auto: "before-restore", name }, [checkpointId]);
    // On core's deadline, not the caller's: a hang-up must not leave the workspace restored and the home not.
    const op = operationSignal(deps);
    await api(replId, () => rollbackStored(workspaceTree(deps, locked, op), checkpointId));
    await onHome(() => rollbackStored(homeTree(deps, locked, op), checkpointId));
    deps.log.info({ replId, checkpoint: checkpointId, undo: before.id }, "checkpoint restored");
    return before;
  });
  const repl = wasRunning
    ? (await startRepl(deps, user, replId, signal)).repl
    : await getOwned(deps, user.userId, replId);
  return { repl, undo };
}
