/**
 * SetEgressPolicy: store the repl's new policy and, when a runner serves it, hand the policy to the
 * driver so the running repl applies it without a restart. Runs under the repl's lock, so it never
 * interleaves with a start (which reads the policy it starts the runner under) or a stop.
 */
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import { DomainError, unavailable } from "../../../../lib/kit/errors.js";
import type { ReplRecord } from "../state/store.js";
import { getOwned, move, operationSignal, withReplLock } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { defaultEgress } from "./egress.js";
import { refuseWhileDeleting, settable } from "./settings.js";

/** `requested` undefined resets the repl to its template's default, else the operator's. */
export async function setEgressPolicy(
  deps: ReplDeps,
  userId: string,
  replId: string,
  requested: EgressPolicy | undefined,
  signal: AbortSignal,
): Promise<ReplRecord> {
  refuseWhileDeleting(await getOwned(deps, userId, replId));
  return withReplLock(deps, replId, signal, refuseWhileDeleting, async () => {
    const current = await getOwned(deps, userId, replId);
    refuseWhileDeleting(current);
    const egress = requested ?? (await defaultEgress(deps, current));
    const r = await move(deps, replId, settable, { egress });
    const session = r.status === "running" ? await deps.state.getActiveSession(replId) : undefined;
    if (!session) return r;
    try {
      await deps.driver.setEgress({ replId, runnerId: session.runnerId, egress }, operationSignal(deps));
    } catch (err) {
      deps.log.warn({ err, replId }, "the running repl could not apply its new egress policy");
      const saved = "the egress policy is saved and applies when the repl next starts";
      if (err instanceof DomainError) throw new DomainError(err.kind, `${err.message}; ${saved}`, { cause: err });
      throw unavailable(`the running repl could not apply the new egress policy; ${saved} (or try again)`, err);
    }
    return r;
  });
}
