/**
 * Reconciliation: runners the driver still runs that no repl's active session points at — left by
 * a crashed core, a start whose record failed, or a session that expired — are stopped. Each check
 * holds the repl's lock (and skips repls busy with an operation), so a runner that is being started
 * right now is never mistaken for an orphan. The workspace is persisted first unless the repl is gone.
 */
import { homePrefix, workspacePrefix } from "./common.js";
import type { ReplDeps } from "./deps.js";

export async function reconcileOnce(deps: ReplDeps, signal: AbortSignal): Promise<number> {
  let stopped = 0;
  for (const runner of await deps.driver.list(signal)) {
    const session = await deps.state.getActiveSession(runner.replId);
    if (session?.runnerId === runner.runnerId) continue;
    const lock = `repl:${runner.replId}`;
    const token = await deps.state.acquireLock(lock, deps.lockTtlMs);
    if (!token) continue; // an operation is under way; look again next round
    try {
      const now = await deps.state.getActiveSession(runner.replId);
      if (now?.runnerId === runner.runnerId) continue;
      const repl = await deps.state.getRepl(runner.replId);
      await deps.driver.stop(
        {
          replId: runner.replId,
          runnerId: runner.runnerId,
          owner: repl?.owner ?? "",
          workspacePrefix: repl ? workspacePrefix(repl) : "",
          homePrefix: repl ? homePrefix(repl) : "",
          reason: "runner no longer belongs to its repl",
          persist: !!repl,
        },
        signal,
      );
      stopped++;
      deps.log.info({ replId: runner.replId, runnerId: runner.runnerId }, "stopped an orphaned runner");
    } catch (err) {
      deps.log.warn({ err, replId: runner.replId, runnerId: runner.runnerId }, "could not stop an orphaned runner");
    } finally {
      await deps.state.releaseLock(lock, token).catch(() => {});
    }
  }
  return stopped;
}
