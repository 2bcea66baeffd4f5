/**
 * Node transports for the client layer: Connect over HTTP/1.1, or gRPC over h2c for streaming-heavy
 * use, authenticated with a bearer token, over TCP or a Unix socket. One per peer: core, core's admin
 * socket (as the operator), a runner (as its user), a runner's admin service (as core) and core's
 * control service (as a runner).
 */
import { connect } from "node:net";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  bearerAuth,
  type CoreAdminClient,
  type CoreClients,
  createCoreAdminClient,
  createCoreClients,
  createRunnerAdminClient,
  createRunnerClients,
  createRunnerControlClient,
  type RunnerAdminClient,
  type RunnerClients,
  type RunnerControlClient,
} from "./clients.js";

export interface NodeTransportOptions {
  /** Bearer token, or a function returning the current one. */
  token?: string | (() => string);
  /** "grpc" uses gRPC over HTTP/2 (needed for bidi streams); "connect" uses Connect over HTTP/1.1. */
  protocol?: "connect" | "grpc";
  /** Reach the server through this Unix socket; baseUrl then only supplies the path prefix. */
  socketPath?: string;
}

export function nodeTransport(baseUrl: string, options: NodeTransportOptions = {}): Transport {
  const interceptors = options.token ? [bearerAuth(options.token)] : [];
  const { socketPath } = options;
  if (options.protocol === "grpc") {
    const nodeOptions = socketPath ? { nodeOptions: { createConnection: () => connect(socketPath) } } : {};
    return createGrpcTransport({ baseUrl, interceptors, ...nodeOptions });
  }
  const nodeOptions = socketPath ? { nodeOptions: { socketPath } } : {};
  return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors, ...nodeOptions });
}

export function coreClientsFor(baseUrl: string, options?: NodeTransportOptions): CoreClients {
  return createCoreClients(nodeTransport(baseUrl, options));
}

export function runnerClientsFor(baseUrl: string, options?: NodeTransportOptions): RunnerClients {
  return createRunnerClients(nodeTransport(baseUrl, options));
}

/** Core's AdminService on its admin socket: no token, the socket's permissions are the credential. */
export function coreAdminClientFor(socketPath: string): CoreAdminClient {
  return createCoreAdminClient(nodeTransport("http://localhost", { socketPath }));
}

export function runnerAdminClientFor(baseUrl: string, options?: NodeTransportOptions): RunnerAdminClient {
  return createRunnerAdminClient(nodeTransport(baseUrl, options));
}

export function runnerControlClientFor(baseUrl: string, options?: NodeTransportOptions): RunnerControlClient {
  return createRunnerControlClient(nodeTransport(baseUrl, options));
}
