/** A server stream the IDE keeps open for as long as it is shown (WatchRepl, WatchFiles). */
import { Code } from "@connectrpc/connect";
import { isCode } from "../ui.js";

export type StreamState = "connecting" | "connected" | "reconnecting";

/** Runs a server stream forever: re-opens it with backoff after it ends or fails, until aborted. */
export async function follow<T>(
  open: (signal: AbortSignal, onHeader: () => void) => AsyncIterable<T>,
  onMessage: (m: T) => void | Promise<void>,
  onState: (s: StreamState) => void,
  signal: AbortSignal,
  extra: { onReconnected?: () => void; probe?: () => Promise<unknown> } = {},
): Promise<void> {
  let attempt = 0;
  while (!signal.aborted) {
    onState(attempt ? "reconnecting" : "connecting");
    let open_ = true;
    try {
      // Connected once the response headers arrive. Servers send them with the first message, and
      // a quiet stream (no file changes) has none for a while: a successful probe call counts too.
      let seen = false;
      const connected = () => {
        if (seen || !open_) return;
        seen = true;
        onState("connected");
        if (attempt) extra.onReconnected?.();
        attempt = 0;
      };
      extra.probe?.().then(connected, () => {});
      for await (const m of open(signal, connected)) {
        connected();
        await onMessage(m);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.PermissionDenied)) throw err;
    } finally {
      open_ = false;
    }
    if (signal.aborted) return;
    attempt++;
    onState("reconnecting");
    await new Promise((r) => setTimeout(r, Math.min(5000, 300 * 2 ** Math.min(attempt, 4))));
  }
}
