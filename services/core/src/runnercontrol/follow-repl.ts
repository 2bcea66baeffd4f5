/**
 * The loop behind the runners' feeds of their repl's settings (preview rules, environment): what
 * `read` makes of the repl now, then again whenever that changes. Changes made in this process
 * arrive at once through the repl's events; a poll of the state store every second catches those
 * made by other core processes (with an embedded store, which has none, every 15 s: a lapsed session). Ends when the repl is gone or the caller leaves, and fails once
 * the calling runner no longer serves the repl (its active session is another runner's, or gone, and
 * the repl is not starting): a control credential taken from a runner opens nothing after it.
 */
import { permissionDenied } from "../../../../lib/kit/errors.js";
import type { ReplDeps } from "../repl/deps.js";
import type { ReplRecord } from "../state/store.js";

/** How often the store is read again: each second where other cores change it, else only to see a session lapse. */
const POLL_MS = { shared: 1000, own: 15_000 };

export async function* followRepl<T>(
  deps: ReplDeps,
  replId: string,
  runnerId: string,
  signal: AbortSignal,
  /** The key that tells whether it changed, and what the runner is then sent. */
  read: (r: ReplRecord) => { key: string; message: () => T },
): AsyncGenerator<T> {
  let changed = false;
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.subscribe(replId, () => {
    changed = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    let last: string | undefined;
    while (!signal.aborted) {
      changed = false;
      const [r, session] = await Promise.all([deps.state.getRepl(replId), deps.state.getActiveSession(replId)]);
      if (!r) return;
      // A runner heartbeats as soon as it is up, before StartRepl records its session (as Heartbeat allows).
      if (session?.runnerId !== runnerId && r.status !== "starting") {
        throw permissionDenied("this runner no longer serves the repl");
      }
      const { message, key } = read(r);
      if (key !== last) {
        last = key;
        yield message();
      }
      // An event between the read and here is not lost: it set `changed`.
      if (changed) continue;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, deps.state.shared ? POLL_MS.shared : POLL_MS.own);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
