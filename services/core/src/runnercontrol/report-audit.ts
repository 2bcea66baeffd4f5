/**
 * ReportAudit: a runner's own audit events (terminals, commands, file changes made with API tokens),
 * filed under its repl. The caller's identity is checked before (service.ts). A runner runs beside
 * its user's code and could be taken over by it, so what it reports is trusted only as far as that
 * user: every event must be the repl owner's (a runner cannot write into another user's log), must
 * name one of the runner's own RPCs (FileService, TerminalService or ProcessService: a runner cannot
 * plant "AuthService/CreateApiToken" in its owner's log) and an API token id or "session" (not a
 * credential kind core records, such as "operator"), and each is marked `source: runner`. A batch
 * with any other event is refused whole (InvalidArgument, which the runner drops and logs), as one
 * with another user's is: an honest runner never sends one (its table, services/runner/src/audit/
 * audited.ts, names only these), so keeping the rest would only hide a broken or hostile runner.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { FileService } from "../../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import type { ReportAuditRequest, RunnerAuditEvent } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { SESSION_TOKEN_ID } from "../../../../lib/contracts/audit.js";
import { invalidArgument, notFound, permissionDenied } from "../../../../lib/kit/errors.js";
import type { AuditRecorder } from "../audit/recorder.js";
import type { ReplDeps } from "../repl/deps.js";

/** How far from core's clock a runner's event time may be before core's own time replaces it. */
const MAX_SKEW_MS = 10 * 60_000;

/** The RPCs a runner may report: its own services' methods, from their descriptors. */
export const RUNNER_RPCS: ReadonlySet<string> = new Set(
  [FileService, TerminalService, ProcessService].flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)),
);
/** An API token's id (auth/secrets.ts: 9 random bytes, base64url), "session", or none (a runner token from before token ids). */
const REPORTABLE_TOKEN_ID = new RegExp(`^(?:[A-Za-z0-9_-]{12}|${SESSION_TOKEN_ID}|)$`);

/** Why a runner's event cannot be recorded, or undefined when it can. */
function problemOf(e: RunnerAuditEvent): string | undefined {
  if (!RUNNER_RPCS.has(e.rpc))
    return `rpc ${JSON.stringify(e.rpc.slice(0, 100))} is not a runner RPC: report only methods of devex.runner.v1.FileService, TerminalService or ProcessService as "<service>/<method>"`;
  if (!REPORTABLE_TOKEN_ID.test(e.tokenId))
    return `token_id ${JSON.stringify(e.tokenId.slice(0, 100))} is neither an API token's id nor "${SESSION_TOKEN_ID}": report the runner token's tid claim`;
  return undefined;
}

export async function reportAudit(deps: ReplDeps, audit: AuditRecorder, req: ReportAuditRequest) {
  const repl = await deps.state.getRepl(req.replId);
  if (!repl) throw notFound(`repl ${req.replId} not found`);
  if (req.events.some((e) => e.userId !== repl.owner))
    throw permissionDenied("a runner reports only its repl owner's calls");
  for (const e of req.events) {
    const problem = problemOf(e);
    if (problem) throw invalidArgument(`${problem}; no event of this batch was recorded`);
  }
  const now = Date.now();
  for (const e of req.events) {
    const reported = e.time ? timestampMs(e.time) : now;
    audit.record({
      time: Math.abs(reported - now) <= MAX_SKEW_MS ? reported : now,
      userId: e.userId,
      tokenId: e.tokenId,
      clientAddress: e.clientAddress,
      rpc: e.rpc,
      replId: req.replId,
      outcome: e.outcome,
      message: e.message,
      details: { ...e.details, source: "runner" },
    });
  }
  return { recorded: req.events.length };
}
