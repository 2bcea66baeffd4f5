/**
 * The MCP server over Streamable HTTP in front of the embedded setup (core, the local driver and
 * real runner processes), as main.ts builds it, for the end-to-end tests; with an API token for
 * each named user.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createLogger } from "../../../lib/kit/log.js";
import { projectRoot } from "../../../lib/kit/project-root.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { issueApiToken } from "../../core/src/auth/secrets.js";
import { type Embedded, type EmbeddedOptions, startEmbedded } from "../../core/test/embedded.js";
import { createMcpApp, type McpApp } from "../src/app.js";
import type { McpHttp, McpHttpOptions } from "../src/http.js";

type HttpSettings = Omit<McpHttpOptions, "authenticate" | "serverFor" | "log" | "publicUrl" | "authorizationServer">;

export interface EmbeddedMcp {
  e: Embedded;
  app: McpApp;
  server: RunningServer;
  mcp: McpHttp;
  /** The Streamable HTTP endpoint. */
  endpoint: string;
  /** An API token per user asked for. */
  tokens: Record<string, string>;
  close(): Promise<void>;
}

export async function startEmbeddedMcp(
  users: string[],
  settings: Partial<HttpSettings> = {},
  embedded: EmbeddedOptions = {},
): Promise<EmbeddedMcp> {
  const e = await startEmbedded(embedded);
  const tokens: Record<string, string> = {};
  for (const user of users) tokens[user] = (await issueApiToken(e.state, user, "agent")).secret;
  const log = createLogger("mcp", { level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const app = createMcpApp({ coreUrl: e.core.url, log });
  let mcp!: McpHttp;
  const server = await startServer({
    name: "mcp",
    port: 0,
    log,
    routes() {},
    http: (req, res) => mcp.handler(req, res),
  });
  mcp = app.http({
    path: "/mcp",
    publicUrl: server.url,
    authorizationServer: e.core.publicUrl,
    allowedHosts: [],
    allowedOrigins: [],
    stateless: false,
    sessionIdleMs: 60_000,
    sseRetryMs: 200,
    sessionsPerUser: 32,
    ...settings,
  });
  return {
    e,
    app,
    server,
    mcp,
    endpoint: `${server.url}/mcp`,
    tokens,
    async close() {
      await mcp.close();
      await server.close();
      await e.close();
    },
  };
}

/**
 * One call through the official MCP Inspector CLI (v2, from the npm registry) with a bearer token;
 * its JSON answer. Without the registry the test is skipped, except under CI=true.
 */
export async function inspectorCli(
  test: Mocha.Context,
  endpoint: string,
  token: string,
  method: string,
  tool?: string,
  args: Record<string, string> = {},
): Promise<{ structuredContent?: Record<string, unknown>; isError?: boolean; tools?: Array<{ name: string }> }> {
  const argv = ["-y", "@modelcontextprotocol/inspector@2", "--cli", endpoint, "--transport", "http"];
  argv.push("--header", `Authorization: Bearer ${token}`, "--method", method);
  if (tool) argv.push("--tool-name", tool);
  for (const [k, v] of Object.entries(args)) argv.push("--tool-arg", `${k}=${v}`);
  try {
    const { stdout } = await promisify(execFile)("npx", argv, {
      cwd: projectRoot,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(stdout);
  } catch (err) {
    if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED.*registry|E404/.test((err as { stderr?: string }).stderr ?? "")) {
      if (process.env.CI === "true") throw err;
      test.skip();
    }
    throw err;
  }
}
