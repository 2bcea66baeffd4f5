/**
 * Graceful shutdown on SIGTERM and SIGINT (and, opted in, on the loss of the parent that started the
 * process with an IPC channel): runs the given steps once, in order, then exits.
 *
 * A repeated signal does not abort a shutdown that may be persisting users' work: the second one
 * says what the shutdown is still waiting for, and only a further one abandons it (exit 1). Signals
 * less than `sameSignalMs` apart count as one, because one Ctrl-C often arrives more than once: the
 * terminal signals the whole foreground process group and npm forwards it to its child too.
 */
import type { Logger } from "./log.js";

export interface ShutdownOptions {
  /** The whole shutdown's deadline; past it the process exits with 1. Defaults to 30 s. */
  timeoutMs?: number;
  /** What the shutdown is still waiting for, said when a second signal arrives. */
  waitingFor?: () => Promise<string> | string;
  /**
   * Shut down too when the parent that started this process with an IPC channel is gone (`npm start`
   * killed): Node has no parent-death signal, but the channel disconnects when the parent dies.
   */
  withParent?: boolean;
  /** Signals closer together than this count as one. Defaults to 500 ms. */
  sameSignalMs?: number;
}

export function onShutdown(
  log: Logger,
  steps: Array<() => Promise<void> | void>,
  timeoutOrOptions: number | ShutdownOptions = {},
): void {
  const o = typeof timeoutOrOptions === "number" ? { timeoutMs: timeoutOrOptions } : timeoutOrOptions;
  // 0: running, 1: shutting down, 2: said what it waits for; the next signal abandons.
  let stage = 0;

  const shutDown = async (reason: string) => {
    stage = 1;
    log.info({ reason }, "shutting down");
    const timer = setTimeout(() => {
      log.error("shutdown took too long: exiting");
      process.exit(1);
    }, o.timeoutMs ?? 30_000);
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

  onStopSignals((signal) => {
    if (stage === 0) void shutDown(signal);
    else if (stage === 1) {
      stage = 2;
      void sayWhatItWaitsFor(log, o.waitingFor);
    } else {
      log.warn({ signal }, "shutdown abandoned: exiting now");
      process.exit(1);
    }
  }, o.sameSignalMs);

  // Started with an IPC channel (process.send exists): the channel is how we learn the parent died.
  if (o.withParent && process.send) {
    const parentGone = () => {
      if (stage === 0) void shutDown("parent process exited");
    };
    if (!process.connected) parentGone();
    else {
      process.once("disconnect", parentGone);
      // The channel only watches for the parent; it must not keep the process alive.
      process.channel?.unref();
    }
  }
}

/**
 * Calls `onStop` for each of `signals` with how many there have been so far; one less than
 * `sameSignalMs` after the previous one counted is the same Ctrl-C, and ignored.
 */
export function onStopSignals(
  onStop: (signal: NodeJS.Signals, count: number) => void,
  sameSignalMs = 500,
  signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
): void {
  let count = 0;
  let last = 0;
  const handle = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (count > 0 && now - last < sameSignalMs) return;
    last = now;
    onStop(signal, ++count);
  };
  for (const s of signals) process.on(s, handle);
}

async function sayWhatItWaitsFor(log: Logger, waitingFor?: ShutdownOptions["waitingFor"]) {
  let what = "the shutdown steps to finish";
  try {
    what = (await waitingFor?.()) || what;
  } catch {}
  log.warn({ waitingFor: what }, `still shutting down, waiting for ${what}; signal again to abandon`);
}
