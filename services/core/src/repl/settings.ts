/**
 * A repl's settings (egress policy, preview sharing, environment variables): changed by its owner in
 * any state but deleting, under the repl's lock, so a change never interleaves with a start (which
 * reads them) or with another change (read, change, write).
 */
import { failedPrecondition } from "../../../../lib/kit/errors.js";
import type { ReplPatch, ReplRecord, ReplState } from "../state/store.js";
import { getOwned, move, withReplLock } from "./common.js";
import type { ReplDeps } from "./deps.js";

/** Every state but deleting ("starting"/"stopping" seen under the lock are leftovers of a crashed core). */
export const settable: readonly ReplState[] = ["stopped", "starting", "running", "stopping"];

export function refuseWhileDeleting(r: ReplRecord | undefined): void {
  if (r?.status === "deleting") throw failedPrecondition(`repl ${r.replId} is being deleted`);
}

/** Applies the patch `change` makes of the owner's repl as it is under the lock; returns the repl as saved. */
export async function changeSetting(
  deps: ReplDeps,
  userId: string,
  replId: string,
  signal: AbortSignal,
  change: (current: ReplRecord) => ReplPatch,
): Promise<ReplRecord> {
  refuseWhileDeleting(await getOwned(deps, userId, replId));
  return withReplLock(deps, replId, signal, refuseWhileDeleting, async () => {
    const current = await getOwned(deps, userId, replId);
    refuseWhileDeleting(current);
    return move(deps, replId, settable, change(current));
  });
}
