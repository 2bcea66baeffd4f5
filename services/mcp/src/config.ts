/**
 * MCP server configuration, from the environment:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | DEVEX_CORE_URL | (required) | core's base URL; tokens are checked and repls reached through it |
 * | DEVEX_MCP_PORT | 8091 | port (HTTP/1.1 and h2c on one port) |
 * | DEVEX_MCP_HOST | 127.0.0.1 | interface to bind |
 * | DEVEX_MCP_PUBLIC_URL | http://127.0.0.1:<port> | URL agents use; its host is always an allowed Host |
 * | DEVEX_MCP_PATH | /mcp | path of the Streamable HTTP endpoint |
 * | DEVEX_MCP_ALLOWED_HOSTS | (none) | extra Host header values accepted, comma-separated (a local server also takes localhost, 127.0.0.1 and [::1] on any port) |
 * | DEVEX_MCP_ALLOWED_ORIGINS | (none) | extra Origin header values accepted, comma-separated (likewise) |
 * | DEVEX_MCP_STATELESS | false | true: no sessions, a fresh server per request |
 * | DEVEX_MCP_SESSION_IDLE | 30m | idle sessions are closed after this long |
 * | DEVEX_MCP_SESSIONS_PER_USER | 16 | open sessions per user; one more closes their least recently used idle one (none idle: 429) |
 * | DEVEX_MCP_SSE_RETRY | 1s | how long a client waits before resuming a dropped stream (SSE retry) |
 * | DEVEX_LOG_LEVEL | info | pino level; secrets are redacted |
 * | DEVEX_TOKEN | (stdio only) | the Devex API token the stdio server acts with |
 */

import { env, loadConfig } from "../../../lib/kit/config.js";
import * as z from "../../../lib/kit/zod.js";

const list = z.pipe(
  z._default(z.string(), ""),
  z.transform((v: string) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ),
);

export const mcpConfigSchema = z.object({
  DEVEX_CORE_URL: env.url(),
  DEVEX_MCP_PORT: env.port(8091),
  DEVEX_MCP_HOST: z._default(z.string(), "127.0.0.1"),
  DEVEX_MCP_PUBLIC_URL: z.optional(env.url()),
  DEVEX_MCP_PATH: z._default(z.string().check(z.regex(/^\/[A-Za-z0-9/_-]*$/)), "/mcp"),
  DEVEX_MCP_ALLOWED_HOSTS: list,
  DEVEX_MCP_ALLOWED_ORIGINS: list,
  DEVEX_MCP_STATELESS: env.bool(false),
  DEVEX_MCP_SESSION_IDLE: env.duration("30m"),
  DEVEX_MCP_SESSIONS_PER_USER: z._default(env.integer(z.minimum(1)), 16),
  DEVEX_MCP_SSE_RETRY: env.duration("1s"),
  DEVEX_TOKEN: z.optional(z.string()),
  DEVEX_LOG_LEVEL: env.logLevel(),
});

export type McpConfig = z.output<typeof mcpConfigSchema>;

export function loadMcpConfig(source: NodeJS.ProcessEnv = process.env): McpConfig {
  return loadConfig(mcpConfigSchema, source);
}
