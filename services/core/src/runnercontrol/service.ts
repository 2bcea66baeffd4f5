/**
 * RunnerControlService: what runners tell core. The caller is authenticated by its control
 * credential (aud "runner-control", sub = runner id, repl = repl id); the ids in the request must
 * match it and the repl's active session.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RunnerControlService } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { permissionDenied } from "../../../../lib/kit/errors.js";
import type { AuditRecorder } from "../audit/recorder.js";
import type { RunnerOf, RunnerPrincipal } from "../auth/principal.js";
import type { ReplDeps } from "../repl/deps.js";
import { gitCredentialFor } from "../repl/git-route.js";
import { stopRepl } from "../repl/stop.js";
import { renewedControlToken } from "./control-token.js";
import { watchEnvironment } from "./environment.js";
import { watchPreviewSharing } from "./preview-sharing.js";
import { reportAudit } from "./report-audit.js";
import { claimRunnerSetup, reportRunnerSetup } from "./setup.js";

const IDLE_STOP_TIMEOUT_MS = 10 * 60_000;

function checkIdentity(p: RunnerPrincipal, req: { replId: string; runnerId: string }) {
  if (p.replId !== req.replId || p.runnerId !== req.runnerId) {
    throw permissionDenied("this credential belongs to another runner or repl");
  }
}

export function createRunnerControlService(
  deps: ReplDeps,
  runnerOf: RunnerOf,
  options: { heartbeatIntervalMs: number; audit: AuditRecorder },
): ServiceImpl<typeof RunnerControlService> {
  return {
    async heartbeat(req, ctx) {
      const caller = runnerOf(ctx);
      checkIdentity(caller, req);
      let known = await deps.state.refreshActiveSession(req.replId, req.runnerId, deps.sessionTtlMs);
      // A runner heartbeats as soon as it is up, before StartRepl has recorded its session: while the
      // repl is starting, the holder of a control credential for it is the runner being started.
      if (!known) known = (await deps.state.getRepl(req.replId))?.status === "starting";
      const controlToken = known ? renewedControlToken(deps.signer, caller) : undefined;
      return { interval: durationFromMs(options.heartbeatIntervalMs), unknownRunner: !known, controlToken };
    },
    async reportIdle(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      const session = await deps.state.getActiveSession(req.replId);
      const repl = await deps.state.getRepl(req.replId);
      if (!session || session.runnerId !== req.runnerId || !repl) return { stopping: false };
      const idleFor = req.idleFor ? Number(req.idleFor.seconds) : 0;
      const reason = `repl stopped after ${Math.max(1, Math.round(idleFor / 60))} minutes idle`;
      // Answer first: the stop drains this very runner, which is waiting for the reply.
      setImmediate(() => {
        stopRepl(deps, repl.owner, req.replId, AbortSignal.timeout(IDLE_STOP_TIMEOUT_MS), reason).catch((err) =>
          deps.log.warn({ err, replId: req.replId }, "idle stop failed"),
        );
      });
      return { stopping: true };
    },
    async *watchPreviewSharing(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      yield* watchPreviewSharing(deps, req, ctx.signal);
    },
    async *watchEnvironment(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      yield* watchEnvironment(deps, req, ctx.signal);
    },
    async claimSetup(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      return claimRunnerSetup(deps, req, ctx.signal);
    },
    async reportSetup(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      await reportRunnerSetup(deps, req);
      return {};
    },
    async getGitCredential(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      return gitCredentialFor(deps, await deps.state.getRepl(req.replId));
    },
    async reportAudit(req, ctx) {
      checkIdentity(runnerOf(ctx), req);
      return reportAudit(deps, options.audit, req);
    },
  };
}
