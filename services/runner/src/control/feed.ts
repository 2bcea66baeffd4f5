/**
 * Follows one of core's feeds of the repl's settings (a server stream on RunnerControlService: the
 * preview rules, the environment) until stopped: each message replaces what the runner holds. A
 * broken feed keeps the last message it had and reconnects with backoff (0.5 s doubling to 10 s).
 */
import type { Logger } from "../../../../lib/kit/log.js";
import { sleep } from "../../../../lib/kit/sleep.js";

export interface Feed {
  stop(): void;
}

export function followFeed<M>(d: {
  /** Opens the stream (again after a break). */
  open: (signal: AbortSignal) => AsyncIterable<M>;
  onMessage: (m: M) => void;
  /** The stream broke (or could not open); it is opened again after the backoff. */
  onBreak?: (err: unknown) => void;
  /** For the log: which feed. */
  name: string;
  log: Logger;
}): Feed {
  const stopped = new AbortController();
  void (async () => {
    for (let delay = 500; !stopped.signal.aborted; delay = Math.min(delay * 2, 10_000)) {
      try {
        for await (const m of d.open(stopped.signal)) {
          d.onMessage(m);
          delay = 500;
        }
      } catch (err) {
        if (stopped.signal.aborted) return;
        d.log.debug({ err, feed: d.name }, "a feed from core broke; reconnecting");
        d.onBreak?.(err);
      }
      await sleep(delay, stopped.signal).catch(() => {});
    }
  })();
  return { stop: () => stopped.abort() };
}
