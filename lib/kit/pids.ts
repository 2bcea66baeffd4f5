/** Process liveness and process-group signals, shared by core's local driver, the runner and tests. */

/** Whether a process with this pid exists (one we may not signal, EPERM, exists too). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signals the process group led by `pid`; false when there is none (or it may not be signalled). */
export function killGroup(pid: number, signal: NodeJS.Signals | number): boolean {
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
