/**
 * WatchRepl: the current state, then every change, with progress of long operations. Changes made
 * in this process arrive at once through ReplEvents; a poll of the state store every second catches
 * changes made by other core processes. The stream ends when the repl is deleted.
 */
import type { DriverProgress } from "../driver/driver.js";
import type { ReplRecord } from "../state/store.js";
import { effective, getOwned } from "./common.js";
import type { ReplDeps } from "./deps.js";
import type { ReplEvent } from "./events.js";

const POLL_MS = 1000;

const key = (r: ReplRecord) => `${r.status}|${r.updateTime}|${r.lastError}|${r.persistTime}`;

export async function* watchRepl(
  deps: ReplDeps,
  userId: string,
  replId: string,
  signal: AbortSignal,
): AsyncGenerator<{ repl: ReplRecord; progress?: DriverProgress }> {
  const queue: ReplEvent[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.subscribe(replId, (e) => {
    queue.push(e);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    let last = await effective(deps, await getOwned(deps, userId, replId));
    yield { repl: last };
    while (!signal.aborted) {
      if (queue.length === 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, POLL_MS);
        });
        clearTimeout(timer);
        wake = undefined;
      }
      if (signal.aborted) return;
      const event = queue.shift();
      if (event?.progress && event.repl) {
        yield { repl: event.repl, progress: event.progress };
        continue;
      }
      // An event carries the record as of that change, so every step shows even when they are
      // quick; a poll (or a delete) reads the store.
      const now = event?.repl ?? (await deps.state.getRepl(replId));
      if (!now) return;
      const shown = event?.repl ?? (await effective(deps, now));
      if (key(shown) !== key(last)) {
        last = shown;
        yield { repl: shown };
      }
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
