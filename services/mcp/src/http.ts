/**
 * MCP over Streamable HTTP at one path (default /mcp), with stateful sessions or a stateless mode.
 *
 * - Every request carries "Authorization: Bearer <Devex API token>". Without a valid one the answer
 *   is 401 with a WWW-Authenticate header pointing at the OAuth protected-resource metadata
 *   (RFC 9728), which is served at /.well-known/oauth-protected-resource.
 * - Host and Origin headers are checked against DNS rebinding (rebinding-guard.ts).
 * - A session belongs to the user who opened it: another user's session id is answered 404, as an
 *   unknown one is.
 * - Streams are resumable: each session keeps its recent SSE events (event-store.ts); every POST
 *   stream starts with a priming event (an id, a retry interval, no data), and a client whose
 *   connection drops sends GET with Last-Event-ID to get the rest of its answers.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { DomainError } from "../../../lib/kit/errors.js";
import type { Logger } from "../../../lib/kit/log.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "../../../lib/kit/server.js";
import { bearerToken } from "../../../lib/kit/tokens.js";
import type { Authenticate } from "./auth.js";
import { trackCallsInFlight } from "./calls-in-flight.js";
import { SessionEventStore } from "./event-store.js";
import { createRebindingGuard, type RebindingGuard } from "./rebinding-guard.js";
import { McpSessions } from "./sessions.js";
import type { Caller } from "./tools/agent-tools.js";

export interface McpHttpOptions {
  /** Path of the MCP endpoint. */
  path: string;
  /** The URL clients use to reach this server (scheme, host, port). */
  publicUrl: string;
  /** Where clients get tokens: core's URL, listed as the authorization server. */
  authorizationServer: string;
  /** Host header values accepted (host or host:port); the public URL's host is always accepted. */
  allowedHosts: string[];
  /** Origin header values accepted; requests without Origin (non-browser clients) are accepted. */
  allowedOrigins: string[];
  /** How long a client waits before reconnecting a dropped stream (the SSE retry field). */
  sseRetryMs: number;
  /** No sessions: a fresh server per request. */
  stateless: boolean;
  /** Sessions idle this long are closed. */
  sessionIdleMs: number;
  /** Open sessions one user may have; opening one more closes their least recently used idle one. */
  sessionsPerUser: number;
  authenticate: Authenticate;
  serverFor(caller: Caller): Server;
  log: Logger;
}

export interface McpHttp {
  handler: HttpHandler;
  /** Closes every session. */
  close(): Promise<void>;
  /** Open sessions, for tests and metrics. */
  readonly sessions: number;
}

const metadataPath = "/.well-known/oauth-protected-resource";

function send(res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function rpcError(res: HttpResponse, status: number, message: string, headers: Record<string, string> = {}) {
  send(res, status, { jsonrpc: "2.0", error: { code: -32000, message }, id: null }, headers);
}

/** Host and Origin against DNS rebinding; answers 403 and returns false if refused. */
function admitted(req: HttpRequest, res: HttpResponse, guard: RebindingGuard): boolean {
  const host = req.headers.host ?? (req.headers as Record<string, string>)[":authority"];
  const refused = guard(host, req.headers.origin);
  if (!refused) return true;
  const setting = refused.header === "host" ? "DEVEX_MCP_ALLOWED_HOSTS" : "DEVEX_MCP_ALLOWED_ORIGINS";
  rpcError(res, 403, `${refused.header} "${refused.value}" is not allowed (set ${setting})`);
  return false;
}

/** The bearer token's user, or undefined after answering 401 (with the metadata challenge) or 503. */
async function callerOf(req: HttpRequest, res: HttpResponse, options: McpHttpOptions): Promise<Caller | undefined> {
  const challenge = (error?: string) => ({
    "www-authenticate": `Bearer resource_metadata="${new URL(metadataPath, options.publicUrl)}"${error ? `, error="${error}"` : ""}`,
  });
  const token = bearerToken(req.headers.authorization);
  if (!token) {
    rpcError(res, 401, "missing bearer token: send Authorization: Bearer <Devex API token>", challenge());
    return undefined;
  }
  try {
    return await options.authenticate(token);
  } catch (e) {
    if (e instanceof DomainError && e.kind === "unauthenticated") {
      rpcError(res, 401, e.message, challenge("invalid_token"));
    } else {
      if (!(e instanceof DomainError)) options.log.error({ err: e }, "authentication failed");
      rpcError(res, 503, e instanceof DomainError ? e.message : "authentication is unavailable; try again");
    }
    return undefined;
  }
}

export function createMcpHttp(options: McpHttpOptions): McpHttp {
  const sessions = new McpSessions(options.sessionsPerUser, options.sessionIdleMs);
  const resource = new URL(options.path, options.publicUrl).toString();
  const guard = createRebindingGuard(options);

  async function handle(req: HttpRequest, res: HttpResponse): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && (path === metadataPath || path === `${metadataPath}${options.path}`)) {
      send(res, 200, {
        resource,
        authorization_servers: [options.authorizationServer],
        bearer_methods_supported: ["header"],
        resource_name: "Devex",
        resource_documentation: `${options.authorizationServer.replace(/\/$/, "")}/docs/mcp`,
      });
      return true;
    }
    if (path !== options.path) return false;

    if (!admitted(req, res, guard)) return true;
    const caller = await callerOf(req, res, options);
    if (!caller) return true;
    await serve(caller, req, res);
    return true;
  }

  /** The call, in a fresh stateless server or in the caller's own session (opened by an initialize). */
  async function serve(caller: Caller, req: HttpRequest, res: HttpResponse) {
    const nodeReq = req as IncomingMessage;
    const nodeRes = res as ServerResponse;
    if (options.stateless) {
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      const server = options.serverFor(caller);
      res.on("close", () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(nodeReq, nodeRes);
      return;
    }

    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const session = sessions.use(sessionId, caller.userId);
      if (!session) {
        rpcError(res, 404, "unknown MCP session: initialize a new one");
        return;
      }
      await session.transport.handleRequest(nodeReq, nodeRes);
      return;
    }
    if (req.method !== "POST") {
      rpcError(res, 400, "no MCP session: send an initialize request first");
      return;
    }
    if (!sessions.makeRoom(caller.userId)) {
      const limit = `${options.sessionsPerUser} MCP sessions`;
      rpcError(res, 429, `you have ${limit} with calls running: end one (DELETE with its Mcp-Session-Id) or wait`);
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new SessionEventStore(),
      retryInterval: options.sseRetryMs,
      onsessioninitialized: (id) => sessions.add(id, { transport, userId: caller.userId, calls }),
      onsessionclosed: (id) => sessions.forget(id),
    });
    const server = options.serverFor(caller);
    transport.onclose = () => {
      if (transport.sessionId) sessions.forget(transport.sessionId);
      void server.close();
    };
    await server.connect(transport);
    // After connect, which sets the transport's onmessage; the session is added during handleRequest.
    const calls = trackCallsInFlight(transport);
    await transport.handleRequest(nodeReq, nodeRes);
  }

  return {
    handler: (req, res) =>
      handle(req, res).catch((err) => {
        options.log.error({ err }, "MCP request failed");
        if (!res.headersSent) rpcError(res, 500, "internal error");
        else res.end();
        return true;
      }),
    close: () => sessions.closeAll(),
    get sessions() {
      return sessions.size;
    },
  };
}
