/**
 * DeleteRepl: stop it if it runs, delete its stored trees (but what its forks use), then its records. A failure leaves
 * the repl deleting with lastError set (it cannot be started: part of its storage may be gone), and the call can
 * simply be repeated.
 */
import { DomainError, unavailable } from "../../../../lib/kit/errors.js";
import { deleteStored } from "../../../../lib/sync/delete-stored.js";
import { describe, getOwned, homePrefix, move, operationSignal, withReplLock, workspacePrefix } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { stopLocked } from "./stop.js";
import { transitions } from "./transitions.js";

const t = transitions.delete;

export async function deleteRepl(
  deps: ReplDeps,
  userId: string,
  replId: string,
  signal: AbortSignal,
  /** Why core deletes it on its own (a failed clone): the last state watchers see says so. */
  reason = "",
): Promise<void> {
  await getOwned(deps, userId, replId);
  await withReplLock(
    deps,
    replId,
    signal,
    () => {},
    async () => {
      let r = await getOwned(deps, userId, replId);
      // A clone that failed is not worth saving (it could be up to DEVEX_GIT_MAX_SIZE of it).
      const keep = r.git?.status !== "cloning";
      if (r.status !== "deleting") ({ repl: r } = await stopLocked(deps, r, "repl deleted", keep));
      r = await move(deps, replId, [...t.from, "deleting"], {
        status: t.via,
        lastError: reason, // a failed delete's error goes while it is tried again
      });
      try {
        // Whatever forks of it still use lingers until they let go (lib/sync delete-stored.ts).
        const signal = operationSignal(deps);
        await deleteStored({ store: deps.blobs, prefix: workspacePrefix(r), signal });
        await deleteStored({ store: deps.blobs, prefix: homePrefix(r), signal });
        await deps.state.deleteRepl(replId, r.owner);
      } catch (err) {
        await move(deps, replId, [t.via], { status: t.onFailure, lastError: `delete failed: ${describe(err)}` }).catch(
          (e) => deps.log.error({ err: e, replId }, "could not record the failed delete"),
        );
        if (err instanceof DomainError) throw err;
        throw unavailable("could not delete the repl's storage; try again", err);
      }
      deps.events.publish(replId, { repl: undefined });
    },
  );
}
