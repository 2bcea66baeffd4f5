/**
 * The Node request behind a connect call, recorded in its context values by the kit's servers.
 * The gRPC handler with parts reads the request's body from it (request-chunks.ts) and opens
 * response lanes on its HTTP/2 stream (response-lane.ts), past connect's per-message chains.
 */
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";

const nodeRequestKey = createContextKey<IncomingMessage | Http2ServerRequest | undefined>(undefined, {
  description: "Node request",
});

/** `values` (or new ones) recording `req`, the Node request connect-node's adapter was given. */
export function withNodeRequest(
  req: IncomingMessage | Http2ServerRequest,
  values: ContextValues = createContextValues(),
): ContextValues {
  values.set(nodeRequestKey, req);
  return values;
}

/** The call's Node request, where the kit's server recorded it. */
export function nodeRequest(values: ContextValues | undefined): IncomingMessage | Http2ServerRequest | undefined {
  return values?.get(nodeRequestKey);
}
