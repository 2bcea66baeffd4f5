/** Process liveness and process-group signals, shared by core's local driver, the runner and tests. */

/**
 * Whether a process with this pid exists (one we may not signal, EPERM, exists too). A pid of 0 or
 * less is no process: kill(2) would take it as this process's group (or every process), so a record
 * that has no pid yet (the pool writes 0 until its process starts) must never read as alive.
 */
export function isAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signals the process group led by `pid`; false when there is none (or it may not be signalled). */
export function killGroup(pid: number, signal: NodeJS.Signals | number): boolean {
  if (!(pid > 0)) return false; // -0 is 0: this process's own group
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the process is gone, polling every 50 ms for at most `ms`; whether it is gone. */
export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; isAlive(pid) && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}
