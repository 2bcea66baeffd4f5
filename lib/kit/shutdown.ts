/**
 * Graceful shutdown on SIGTERM and SIGINT: runs the given steps once, in order, then exits. A second
 * signal while shutting down exits at once.
 */
import type { Logger } from "./log.js";

export function onShutdown(log: Logger, steps: Array<() => Promise<void> | void>, timeoutMs = 30_000): void {
  let stopping = false;
  const run = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error("shutdown took too long: exiting");
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    let code = 0;
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        code = 1;
        log.error({ err }, "shutdown step failed");
      }
    }
    process.exit(code);
  };
  process.once("SIGTERM", run);
  process.once("SIGINT", run);
}
