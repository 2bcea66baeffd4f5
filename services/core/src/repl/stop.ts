/**
 * StopRepl: persist, then tear down (both in the driver). If persisting fails, the runner keeps
 * running, the repl stays running with lastError set, and the call fails with Unavailable.
 */
import { failedPrecondition, unavailable } from "../../../../lib/kit/errors.js";
import { NothingStoredError } from "../../../../lib/sync/sync.js";
import { nameStored } from "../checkpoints/create.js";
import type { ReplRecord, SetupRecord } from "../state/store.js";
import { describe, getOwned, homePrefix, move, operationSignal, withReplLock, workspacePrefix } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { interruptedSetup } from "./setup.js";
import { transitions } from "./transitions.js";

const t = transitions.stop;

function refuseWhileDeleting(r: ReplRecord | undefined) {
  if (r?.status === "deleting") throw failedPrecondition(`repl ${r.replId} is being deleted`);
}

/** Stops a repl whose lock the caller holds. Returns the stopped repl and how long persisting took. */
export async function stopLocked(
  deps: ReplDeps,
  r: ReplRecord,
  reason: string,
  /** False: tear the runner down without saving its files (core deleting a repl whose clone failed). */
  persist = true,
  /** False: no automatic checkpoint of what it saved (a restore makes its own). */
  checkpoint = true,
): Promise<{ repl: ReplRecord; persistMs: number }> {
  if (r.status === "stopped") return { repl: r, persistMs: 0 };
  refuseWhileDeleting(r);
  const replId = r.replId;
  // "starting"/"stopping" under our lock are leftovers of a crashed core: finish them as a stop.
  r = await move(deps, replId, [...t.from, "starting", "stopping"], { status: t.via });
  const session = await deps.state.getActiveSession(replId);
  if (!session) {
    r = await move(deps, replId, [t.via], { status: t.to, ...(await setupLeftRunning(deps, replId)) });
    return { repl: r, persistMs: 0 };
  }
  const began = Date.now();
  let persistTime: number;
  try {
    ({ persistTime } = await deps.driver.stop(
      {
        replId,
        owner: r.owner,
        workspacePrefix: workspacePrefix(r),
        homePrefix: homePrefix(r),
        runnerId: session.runnerId,
        reason,
        persist,
      },
      operationSignal(deps),
      (progress) => deps.events.publish(replId, { repl: r, progress }),
    ));
  } catch (err) {
    deps.log.warn({ err, replId }, "stop failed; the runner keeps running");
    const lastError = `stop failed, the runner keeps running: ${describe(err)}`;
    await move(deps, replId, [t.via], { status: t.onFailure, lastError }).catch((e) =>
      deps.log.error({ err: e, replId }, "could not record the failed stop"),
    );
    throw unavailable(`${lastError}; try again`, err);
  }
  const persistMs = Date.now() - began;
  await deps.state.deleteActiveSession(replId, session.runnerId);
  if (persist && checkpoint && deps.checkpoints.onStop) await checkpointAfterStop(deps, r);
  const setup = await setupLeftRunning(deps, replId);
  r = await move(deps, replId, [t.via], { status: t.to, persistTime, lastError: "", ...setup });
  return { repl: r, persistMs };
}

/** The automatic checkpoint of what a stop saved; a failure is logged, the stop stands. */
async function checkpointAfterStop(deps: ReplDeps, r: ReplRecord) {
  await nameStored(deps, r, { auto: "before-stop" }).catch((err) => {
    if (!(err instanceof NothingStoredError))
      deps.log.warn({ err, replId: r.replId }, "the automatic checkpoint of a stop failed");
  });
}

/** Read once the runner is gone (so no report can still land): a setup it left running failed. */
async function setupLeftRunning(deps: ReplDeps, replId: string): Promise<{ setup?: SetupRecord }> {
  const current = await deps.state.getRepl(replId);
  const setup = current && interruptedSetup(current);
  return setup ? { setup } : {};
}

export async function stopRepl(
  deps: ReplDeps,
  userId: string,
  replId: string,
  signal: AbortSignal,
  reason = "stopped by its owner",
  checkpoint = true,
): Promise<{ repl: ReplRecord; persistMs: number }> {
  const current = await getOwned(deps, userId, replId);
  refuseWhileDeleting(current);
  if (current.git?.status === "cloning") {
    throw failedPrecondition(`repl ${replId} is being cloned; it runs once cloned, or DeleteRepl cancels the clone`);
  }
  if (current.status === "stopped") return { repl: current, persistMs: 0 };
  return withReplLock(deps, replId, signal, refuseWhileDeleting, async () =>
    stopLocked(deps, await getOwned(deps, userId, replId), reason, true, checkpoint),
  );
}
