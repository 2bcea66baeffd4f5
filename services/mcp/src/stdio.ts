/**
 * The MCP server over stdio, for agents that launch their tools as processes (Claude Desktop,
 * Cursor): `DEVEX_CORE_URL=... DEVEX_TOKEN=... node dist/mcp/stdio.mjs`. Logs go to
 * stderr; stdout carries only the protocol.
 */

import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import pino from "pino";
import { configOrExit } from "../../../lib/kit/config.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createMcpApp } from "./app.js";
import { loadMcpConfig } from "./config.js";

const config = configOrExit(loadMcpConfig);
const log = createLogger("mcp-stdio", { level: config.DEVEX_LOG_LEVEL, destination: pino.destination(2) });
if (!config.DEVEX_TOKEN) {
  log.fatal("DEVEX_TOKEN is not set: create an API token in Devex and pass it in the environment");
  process.exit(2);
}
const app = createMcpApp({ coreUrl: config.DEVEX_CORE_URL, log });
try {
  const caller = await app.authenticate(config.DEVEX_TOKEN);
  await app.serverFor(caller).connect(new StdioServerTransport());
  log.info({ user: caller.userId }, "MCP server ready on stdio");
} catch (e) {
  log.fatal(`cannot start: ${(e as Error).message}`);
  process.exit(1);
}
