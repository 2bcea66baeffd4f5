/**
 * One HTTP request relayed to an upstream, bodies streamed both ways: the request's body goes up as
 * it arrives, and the caller answers from the upstream's response. The upstream request ends when
 * the client goes away before the answer is done (a Ctrl-C'd git fetch), and when either side moves
 * nothing for `idleMs`. Used by core's git route and the runner's git relay.
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { pipeline } from "node:stream/promises";

/** Sends `req`'s body through `upstream` and resolves with its response; rejects (upstream destroyed) on failure. */
export async function relayRequest(
  req: IncomingMessage,
  res: ServerResponse | Http2ServerResponse,
  upstream: ClientRequest,
  idleMs: number,
): Promise<IncomingMessage> {
  upstream.setTimeout(idleMs, () => upstream.destroy(new Error(`the upstream moved nothing for ${idleMs} ms`)));
  res.once("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    upstream.once("response", resolve);
    upstream.once("error", reject);
  });
  try {
    const [, response] = await Promise.all([pipeline(req, upstream), answered]);
    return response;
  } catch (err) {
    upstream.destroy();
    throw err;
  }
}

/** The named headers that hold one string value. */
export function pickHeaders(headers: IncomingHttpHeaders, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = headers[name];
    if (typeof v === "string") out[name] = v;
  }
  return out;
}
