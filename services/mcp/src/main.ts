/** The MCP server over Streamable HTTP: `node dist/mcp/main.mjs` (configuration in config.ts). */
import { configOrExit } from "../../../lib/kit/config.js";
import { createLogger } from "../../../lib/kit/log.js";
import { startServer } from "../../../lib/kit/server.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { createMcpApp } from "./app.js";
import { loadMcpConfig } from "./config.js";

const config = configOrExit(loadMcpConfig);
const log = createLogger("mcp", { level: config.DEVEX_LOG_LEVEL });
const app = createMcpApp({ coreUrl: config.DEVEX_CORE_URL, log });
const publicUrl = config.DEVEX_MCP_PUBLIC_URL ?? `http://127.0.0.1:${config.DEVEX_MCP_PORT}`;
const mcp = app.http({
  path: config.DEVEX_MCP_PATH,
  publicUrl,
  authorizationServer: config.DEVEX_CORE_URL,
  allowedHosts: [...config.DEVEX_MCP_ALLOWED_HOSTS, `localhost:${config.DEVEX_MCP_PORT}`],
  allowedOrigins: config.DEVEX_MCP_ALLOWED_ORIGINS,
  stateless: config.DEVEX_MCP_STATELESS,
  sessionIdleMs: config.DEVEX_MCP_SESSION_IDLE,
  sessionsPerUser: config.DEVEX_MCP_SESSIONS_PER_USER,
  sseRetryMs: config.DEVEX_MCP_SSE_RETRY,
});
const server = await startServer({
  name: "mcp",
  port: config.DEVEX_MCP_PORT,
  host: config.DEVEX_MCP_HOST,
  log,
  routes() {},
  http: mcp.handler,
});
log.info(`MCP endpoint: ${new URL(config.DEVEX_MCP_PATH, publicUrl)}`);
// SIGTERM, Ctrl-C or the end of `npm start` (the MCP server keeps no state of its own).
onShutdown(log, [() => mcp.close(), () => server.close()], { withParent: true });
