/**
 * Builds the MCP server's parts from its dependencies: the tool catalog from the contracts, the
 * tool implementations over the shared clients, authentication through core, and the HTTP handler.
 * main.ts (HTTP) and stdio.ts call this; tests call it with their own core URL.
 */
import { coreClientsFor, runnerClientsFor } from "../../../lib/client/node.js";
import { loadContracts } from "../../../lib/contracts/registry.js";
import type { Logger } from "../../../lib/kit/log.js";
import { type Authenticate, createCoreAuthenticator } from "./auth.js";
import { createMcpHttp, type McpHttp } from "./http.js";
import { createMcpServer } from "./mcp-server.js";
import { type Caller, createAgentTools } from "./tools/agent-tools.js";
import { buildToolCatalog } from "./tools/catalog.js";

export const version = "0.1.0";

export interface McpAppOptions {
  coreUrl: string;
  log: Logger;
}

export interface McpApp {
  authenticate: Authenticate;
  /** A new MCP server bound to one caller. */
  serverFor(caller: Caller): ReturnType<typeof createMcpServer>;
  http(options: Omit<Parameters<typeof createMcpHttp>[0], "authenticate" | "serverFor" | "log">): McpHttp;
}

export function createMcpApp({ coreUrl, log }: McpAppOptions): McpApp {
  const catalog = buildToolCatalog(loadContracts());
  const tools = createAgentTools({
    core: (caller) => coreClientsFor(coreUrl, { token: caller.token }),
    runner: (url, token) => runnerClientsFor(url, { token }),
  });
  const authenticate = createCoreAuthenticator((token) => coreClientsFor(coreUrl, { token }));
  const serverFor = (caller: Caller) => createMcpServer({ catalog, tools, log, version }, caller);
  return {
    authenticate,
    serverFor,
    http: (options) => createMcpHttp({ ...options, authenticate, serverFor, log }),
  };
}
