/** Helpers shared by the lifecycle operations: ownership, locking, conversion to the API type. */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  CloneStatus,
  type GitOrigin,
  GitOriginSchema,
  type Repl,
  ReplSchema,
  ReplStatus,
} from "../../../../gen/devex/core/v1/repl_pb.js";
import { egressToProto } from "../../../../lib/egress/proto.js";
import { DomainError, failedPrecondition, notFound, unavailable } from "../../../../lib/kit/errors.js";
import { sleep } from "../../../../lib/kit/sleep.js";
import type { GitRecord, ReplPatch, ReplRecord, ReplState } from "../state/store.js";
import type { ReplDeps } from "./deps.js";
import { effectiveEgress } from "./egress.js";
import { sharingOf, sharingToProto } from "./preview-sharing.js";
import { setupToProto } from "./setup.js";

const statusOf: Record<ReplState, ReplStatus> = {
  stopped: ReplStatus.STOPPED,
  starting: ReplStatus.STARTING,
  running: ReplStatus.RUNNING,
  stopping: ReplStatus.STOPPING,
  deleting: ReplStatus.DELETING,
};

export function toProto(deps: ReplDeps, r: ReplRecord): Repl {
  return create(ReplSchema, {
    replId: r.replId,
    name: r.name,
    template: r.template,
    owner: r.owner,
    status: statusOf[r.status],
    createTime: timestampFromMs(r.createTime),
    updateTime: timestampFromMs(r.updateTime),
    persistTime: r.persistTime ? timestampFromMs(r.persistTime) : undefined,
    lastError: r.lastError,
    egress: egressToProto(effectiveEgress(deps, r)),
    egressDeniedCidrs: [...deps.egressDeniedCidrs],
    egressNotEnforced: deps.driver.egressNotEnforced ?? "",
    previewSharing: sharingToProto(sharingOf(r)),
    // Records older than these settings: the run command of the operator's template.
    runCommand: r.runCommand ?? deps.templates.builtin(r.template)?.runCommand ?? "",
    previewPort: r.previewPort ?? 0,
    setup: r.setup && setupToProto(r.setup),
    git: r.git && gitToProto(r.git),
  });
}

function gitToProto(g: GitRecord): GitOrigin {
  return create(GitOriginSchema, {
    source: { url: g.url, ref: g.ref, fullHistory: g.fullHistory, allowPush: g.allowPush ?? false },
    status: g.status === "done" ? CloneStatus.DONE : CloneStatus.CLONING,
    commit: g.commit ?? "",
    githubGrant: g.githubGrant ?? false,
  });
}

export const workspacePrefix = (r: Pick<ReplRecord, "owner" | "replId">) => `repl/${r.owner}/${r.replId}/`;
/** Where the repl's home is stored: beside the workspace's prefix, never under it (its sync owns every key there). */
export const homePrefix = (r: Pick<ReplRecord, "owner" | "replId">) => `home/${r.owner}/${r.replId}/`;

/** The caller's repl. Another user's repl is NotFound, exactly like a missing one. */
export async function getOwned(deps: ReplDeps, userId: string, replId: string): Promise<ReplRecord> {
  const r = await deps.state.getRepl(replId);
  if (r?.owner === userId) return r;
  // Only its owner learns why core deleted it (and that it existed).
  const gone = r ? undefined : await deps.state.getReplTombstone(replId);
  if (gone?.owner === userId) throw notFound(`repl ${replId} was deleted: ${gone.reason}`);
  throw notFound(`repl ${replId} not found`);
}

export const runnerLost = "the runner stopped sending heartbeats";

/**
 * The repl as clients should see it: a running repl whose active session expired has lost its runner
 * and is reported stopped.
 */
export async function effective(deps: ReplDeps, r: ReplRecord): Promise<ReplRecord> {
  if (r.status !== "running") return r;
  if (await deps.state.getActiveSession(r.replId)) return r;
  return { ...r, status: "stopped", lastError: r.lastError || runnerLost };
}

/** Applies a transition and announces it; throws if another process moved the repl meanwhile. */
export async function move(
  deps: ReplDeps,
  replId: string,
  from: readonly ReplState[],
  patch: ReplPatch,
): Promise<ReplRecord> {
  const r = await deps.state.transitionRepl(replId, from, { updateTime: Date.now(), ...patch });
  if (!r) throw failedPrecondition(`repl ${replId} changed state concurrently; try again`);
  deps.events.publish(replId, { repl: r });
  return r;
}

/**
 * Runs `fn` holding the repl's lock (an expiring lock in the state store, so it also excludes other
 * core processes). While waiting, `check` sees the repl and may throw to give up, e.g. when a Start
 * finds the repl stopping.
 */
export async function withReplLock<T>(
  deps: ReplDeps,
  replId: string,
  signal: AbortSignal,
  check: (r: ReplRecord | undefined) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const name = `repl:${replId}`;
  const deadline = Date.now() + deps.lockWaitMs;
  let token = await deps.state.acquireLock(name, deps.lockTtlMs);
  for (let delay = 20; !token; delay = Math.min(delay * 2, 250)) {
    check(await deps.state.getRepl(replId));
    if (Date.now() > deadline) throw unavailable(`repl ${replId} is busy with another operation; try again`);
    await sleep(delay, signal);
    token = await deps.state.acquireLock(name, deps.lockTtlMs);
  }
  // Keep the lock while the operation runs, however long the driver takes.
  const held = token;
  const renew = setInterval(() => {
    deps.state
      .renewLock(name, held, deps.lockTtlMs)
      .then((ok) => ok || deps.log.error({ replId }, "lost the repl lock during an operation"))
      .catch((err) => deps.log.warn({ err, replId }, "lock renewal failed"));
  }, deps.lockTtlMs / 3);
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await deps.state.releaseLock(name, held).catch((err) => deps.log.warn({ err, replId }, "lock release failed"));
  }
}

/** The signal driver operations run under (see ReplDeps.operationTimeoutMs). */
export const operationSignal = (deps: ReplDeps) => AbortSignal.timeout(deps.operationTimeoutMs);

/** A message safe for clients and for `lastError`. */
export function describe(err: unknown): string {
  return err instanceof DomainError ? err.message : "internal error";
}
