/**
 * Browser transports for the client layer: Connect-Web over the page's fetch, authenticated with a
 * bearer token when one is given (core calls may instead ride on the session cookie). No Node code:
 * the web client bundles this.
 */
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { bearerAuth } from "./clients.js";

export interface WebTransportOptions {
  /** Bearer token, or a function returning the current one. */
  token?: string | (() => string);
  /** Protobuf binary (the default) or JSON bodies. */
  format?: "binary" | "json";
}

export function webTransport(baseUrl: string, options: WebTransportOptions = {}): Transport {
  return createConnectTransport({
    baseUrl,
    useBinaryFormat: options.format !== "json",
    interceptors: options.token ? [bearerAuth(options.token)] : [],
  });
}
