/**
 * ClaimSetup and ReportSetup: the runner asks for the repl's setup command once it is up, runs it,
 * and says how it ended. Only the runner core is starting or running for the repl may claim, and the
 * claim itself is atomic in the state store (repl/setup.ts), so the command runs once.
 */
import type {
  ClaimSetupRequest,
  ReportSetupRequest,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { sleep } from "../../../../lib/kit/sleep.js";
import { move } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import { claimSetup, endedSetup } from "../repl/setup.js";

const CLONE_POLL_MS = 500;

/** The runner is this repl's: its recorded session, or the one being started before it is recorded. */
async function servesRepl(deps: ReplDeps, req: { replId: string; runnerId: string }): Promise<boolean> {
  const session = await deps.state.getActiveSession(req.replId);
  if (session) return session.runnerId === req.runnerId;
  return (await deps.state.getRepl(req.replId))?.status === "starting";
}

/**
 * A repl being cloned runs its setup on the clone, not before it: the claim waits until the clone
 * is done (or gone), checking the store, so that it works whichever core runs the clone.
 */
async function cloned(deps: ReplDeps, replId: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + deps.clone.timeoutMs + 60_000;
  while ((await deps.state.getRepl(replId))?.git?.status === "cloning" && Date.now() < deadline) {
    await sleep(CLONE_POLL_MS, signal);
  }
}

export async function claimRunnerSetup(
  deps: ReplDeps,
  req: ClaimSetupRequest,
  signal: AbortSignal,
): Promise<{ command: string }> {
  if (!(await servesRepl(deps, req))) return { command: "" };
  await cloned(deps, req.replId, signal);
  // Still cloning past the clone's deadline (its core went away): the setup stays pending.
  if ((await deps.state.getRepl(req.replId))?.git?.status === "cloning") return { command: "" };
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
