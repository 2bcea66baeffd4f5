/** Node transports for the client layer: Connect over HTTP/1.1, or gRPC over h2c for streaming-heavy use. */
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { bearerAuth, type CoreClients, createCoreClients, createRunnerClients, type RunnerClients } from "./clients.js";

export interface NodeTransportOptions {
  /** Bearer token, or a function returning the current one. */
  token?: string | (() => string);
  /** "grpc" uses gRPC over HTTP/2 (needed for bidi streams); "connect" uses Connect over HTTP/1.1. */
  protocol?: "connect" | "grpc";
}

export function nodeTransport(baseUrl: string, options: NodeTransportOptions = {}): Transport {
  const interceptors = options.token ? [bearerAuth(options.token)] : [];
  return options.protocol === "grpc"
    ? createGrpcTransport({ baseUrl, interceptors })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
}

export function coreClientsFor(baseUrl: string, options?: NodeTransportOptions): CoreClients {
  return createCoreClients(nodeTransport(baseUrl, options));
}

export function runnerClientsFor(baseUrl: string, options?: NodeTransportOptions): RunnerClients {
  return createRunnerClients(nodeTransport(baseUrl, options));
}
