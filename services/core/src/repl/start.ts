/**
 * StartRepl: returns the running runner, or starts one. Concurrent starts (in this or another core
 * process) serialise on the repl's lock; the first starts the runner, the others find it running.
 * A start that finds the repl stopping or being deleted (by an operation holding the lock) fails with
 * FailedPrecondition; intermediate states without a lock holder are leftovers of a crashed core, and
 * the start finishes them.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type RunnerAccess, RunnerAccessSchema } from "../../../../gen/devex/core/v1/repl_pb.js";
import { type ApiScope, runnerScopesFor } from "../../../../lib/contracts/api-scopes.js";
import { SESSION_TOKEN_ID } from "../../../../lib/contracts/audit.js";
import { Audience, PREVIEW_SCOPES, RunnerRoute, type RunnerScope } from "../../../../lib/contracts/runner-access.js";
import { DomainError, failedPrecondition, unavailable } from "../../../../lib/kit/errors.js";
import { mintControlToken } from "../runnercontrol/control-token.js";
import type { ActiveSession, ReplRecord } from "../state/store.js";
import {
  describe,
  getOwned,
  homePrefix,
  move,
  operationSignal,
  runnerLost,
  withReplLock,
  workspacePrefix,
} from "./common.js";
import { deleteRepl } from "./delete.js";
import type { ReplDeps } from "./deps.js";
import { effectiveEgress } from "./egress.js";
import { previewRootOf } from "./preview-sharing.js";
import { interruptedSetup } from "./setup.js";
import { stopLocked } from "./stop.js";
import { transitions } from "./transitions.js";

const t = transitions.start;
/** How long past its timeout a clone may still be reported before it counts as cut off. */
const ABANDONED_CLONE_GRACE_MS = 2 * 60_000;

function refuseWhileBusy(r: ReplRecord | undefined) {
  if (r?.status === "stopping") throw failedPrecondition(`repl ${r.replId} is stopping; start it again once stopped`);
  if (r?.status === "deleting") throw failedPrecondition(`repl ${r.replId} is being deleted`);
}

function access(deps: ReplDeps, user: RunnerUser, session: ActiveSession): RunnerAccess {
  const mint = (scope: RunnerScope[]) =>
    deps.signer.mint(
      { aud: Audience.runner, sub: user.userId, repl: session.replId, scope, tid: user.tokenId ?? SESSION_TOKEN_ID },
      deps.runnerTokenTtlSeconds,
    );
  const url = session.url.replace(/\/+$/, "");
  const previewBase = previewRootOf(deps, session.replId, url);
  return create(RunnerAccessSchema, {
    url,
    // What the caller's API token may do on a runner, and no more (lib/contracts/api-scopes.ts).
    token: mint(runnerScopesFor(user.scopes)),
    // A preview link is shared and ends up in a page's URL: it must not open files, terminals or commands.
    previewToken: mint(PREVIEW_SCOPES),
    expireTime: timestampFromMs(Date.now() + deps.runnerTokenTtlSeconds * 1000),
    websocketPath: RunnerRoute.terminalSocket,
    previewUrlTemplate: `${previewBase}${RunnerRoute.preview}{port}/`,
  });
}

/**
 * The repl's active session if its runner is still running. A session outlives its runner by up to
 * its TTL (heartbeats stop; a machine reboots under core), and handing out that runner's access
 * would only give the client errors until it lapses.
 */
async function liveSession(deps: ReplDeps, replId: string, signal: AbortSignal): Promise<ActiveSession | undefined> {
  const session = await deps.state.getActiveSession(replId);
  if (!session) return undefined;
  // Only a definite "stopped" counts: a driver that cannot tell right now (the cluster API is
  // unreachable) must not make a healthy runner look dead.
  const status = await deps.driver.status(session.runnerId, signal).catch(() => "running" as const);
  return status === "running" ? session : undefined;
}

/** Who starts the repl: the owner, with what their credential may do. */
export interface RunnerUser {
  userId: string;
  scopes: readonly ApiScope[];
  /** The caller's API token's id; absent for a browser session. Runner tokens carry it (their `tid`). */
  tokenId?: string;
  /** Core itself, starting a repl to clone into it (clone.ts); any other start waits for the clone. */
  cloning?: boolean;
}

/**
 * A repl is started by its clone only. One whose clone outlived its deadline was cut off (the core
 * running it went away): a half-made repl, deleted now.
 */
async function refuseWhileCloning(deps: ReplDeps, r: ReplRecord): Promise<never> {
  const git = r.git!;
  if (Date.now() > git.startTime + deps.clone.timeoutMs + ABANDONED_CLONE_GRACE_MS) {
    const reason = "clone failed: it was cut off (core restarted during it)";
    await deleteRepl(deps, r.owner, r.replId, operationSignal(deps), reason);
    throw failedPrecondition(`repl ${r.replId} was deleted: ${reason}; create it again`);
  }
  throw failedPrecondition(
    `repl ${r.replId} is being cloned from ${git.url}; WatchRepl shows the progress, and it runs once cloned`,
  );
}

export async function startRepl(
  deps: ReplDeps,
  user: RunnerUser,
  replId: string,
  signal: AbortSignal,
): Promise<{ repl: ReplRecord; runner: RunnerAccess }> {
  const { userId } = user;
  const current = await getOwned(deps, userId, replId);
  if (current.git?.status === "cloning" && !user.cloning) await refuseWhileCloning(deps, current);
  if (current.status === "running") {
    const session = await liveSession(deps, replId, signal);
    if (session) return { repl: current, runner: access(deps, user, session) };
  }
  return withReplLock(deps, replId, signal, refuseWhileBusy, async () => {
    let r = await getOwned(deps, userId, replId);
    if (r.status === "deleting") refuseWhileBusy(r); // a delete that failed midway: only DeleteRepl goes on
    // Holding the lock, "starting"/"stopping" can only be leftovers of a core that died mid-operation.
    if (r.status === "stopping") ({ repl: r } = await stopLocked(deps, r, "finishing an interrupted stop"));
    if (r.status === "running") {
      const session = await liveSession(deps, replId, signal);
      if (session) return { repl: r, runner: access(deps, user, session) };
      await deps.state.deleteActiveSession(replId);
      r = await move(deps, replId, ["running"], { status: "stopped", lastError: runnerLost });
    }
    if (r.status === "starting") r = await move(deps, replId, ["starting"], { status: "stopped" });
    // A setup still "running" belonged to a runner that is gone: it failed, and does not run again.
    const setup = interruptedSetup(r);
    r = await move(deps, replId, t.from, { status: t.via, lastError: "", ...(setup ? { setup } : {}) });

    const runnerId = `run-${randomBytes(8).toString("hex")}`;
    let session: ActiveSession | undefined;
    try {
      const started = await deps.driver.start(
        {
          replId,
          owner: userId,
          workspacePrefix: workspacePrefix(r),
          homePrefix: homePrefix(r),
          runnerId,
          controlToken: mintControlToken(deps.signer, runnerId, replId),
          coreUrl: deps.coreUrl,
          egress: effectiveEgress(deps, r),
        },
        operationSignal(deps),
        (progress) => deps.events.publish(replId, { repl: r, progress }),
      );
      session = { replId, runnerId: started.runnerId, url: started.url, startTime: Date.now() };
      await deps.state.setActiveSession(session, deps.sessionTtlMs);
      r = await move(deps, replId, [t.via], { status: t.to });
    } catch (err) {
      deps.log.warn({ err, replId }, "start failed");
      if (session) {
        await deps.driver
          .stop(
            {
              ...session,
              owner: userId,
              workspacePrefix: workspacePrefix(r),
              homePrefix: homePrefix(r),
              reason: "start failed",
            },
            operationSignal(deps),
          )
          .catch((e) => deps.log.error({ err: e, replId }, "could not tear down the runner of a failed start"));
        await deps.state.deleteActiveSession(replId, runnerId).catch(() => {});
      }
      await move(deps, replId, [t.via], { status: t.onFailure, lastError: `start failed: ${describe(err)}` }).catch(
        (e) => deps.log.error({ err: e, replId }, "could not record the failed start"),
      );
      if (err instanceof DomainError) throw err;
      throw unavailable("the runtime could not start a runner; try again", err);
    }
    return { repl: r, runner: access(deps, user, session) };
  });
}
