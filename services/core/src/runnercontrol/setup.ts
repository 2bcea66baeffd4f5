/**
 * ClaimSetup and ReportSetup: the runner asks for the repl's setup command once it is up, runs it,
 * and says how it ended. Only the runner core is starting or running for the repl may claim, and the
 * claim itself is atomic in the state store (repl/setup.ts), so the command runs once.
 */
import type {
  ClaimSetupRequest,
  ReportSetupRequest,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { move } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import { claimSetup, endedSetup } from "../repl/setup.js";

/** The runner is this repl's: its recorded session, or the one being started before it is recorded. */
async function servesRepl(deps: ReplDeps, req: { replId: string; runnerId: string }): Promise<boolean> {
  const session = await deps.state.getActiveSession(req.replId);
  if (session) return session.runnerId === req.runnerId;
  return (await deps.state.getRepl(req.replId))?.status === "starting";
}

export async function claimRunnerSetup(deps: ReplDeps, req: ClaimSetupRequest): Promise<{ command: string }> {
  if (!(await servesRepl(deps, req))) return { command: "" };
  const { command, repl } = await claimSetup(deps.state, req.replId);
  if (repl) {
    deps.log.info({ replId: req.replId }, "setup command claimed");
    deps.events.publish(req.replId, { repl });
  }
  return { command };
}

export async function reportRunnerSetup(deps: ReplDeps, req: ReportSetupRequest): Promise<void> {
  if (!(await servesRepl(deps, req))) return;
  const r = await deps.state.getRepl(req.replId);
  const setup = r && endedSetup(r, req.exitCode, req.message);
  if (!r || !setup) return;
  // In any lifecycle state but a delete (a runner reports while its repl starts, runs or stops).
  await move(deps, req.replId, ["starting", "running", "stopping", "stopped"], { setup });
}
