/**
 * The cluster's egress proxy: an explicit HTTP proxy for repl pods (their HTTP(S)_PROXY, set by
 * core's Kubernetes driver).
 *
 * - CONNECT host:port (TLS, and any TCP a client tunnels) → a TCP connection, bytes piped both ways.
 * - GET http://host/path (absolute URI: plain HTTP) → the request forwarded, bodies streamed.
 *
 * Every request names its repl with Proxy-Authorization Basic <replId>:<token>
 * (lib/contracts/egress-proxy.ts); a missing or wrong one is 407. The repl's policy (policies.ts, at
 * most a second old) decides by route.ts; a refusal is 403 (or 502 when a name does not resolve)
 * with a one-line reason, for CONNECT too, before any byte reaches the destination. Nothing is
 * buffered beyond the sockets' own windows.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { egressProxyRepl } from "../../../lib/contracts/egress-proxy.js";
import type { EgressRanges } from "../../../lib/egress/policy.js";
import type { Logger } from "../../../lib/kit/log.js";
import type { PolicySource } from "./policies.js";
import { type Resolve, type Route, route, systemResolve } from "./route.js";

/** Opens the TCP connection to an address route() allowed. */
export type Dial = (address: string, port: number) => Socket;

export interface EgressProxyDeps {
  secret: string;
  policies: PolicySource;
  ranges: EgressRanges;
  log: Logger;
  /** How names are resolved (default: the system resolver). */
  resolve?: Resolve;
  /**
   * FOR TESTS ONLY: where an allowed address is really dialled. The tests' "internet" runs on
   * loopback, which no policy opens; they resolve names to public test addresses (the policy judges
   * those) and map them to their loopback servers here. Production never sets it.
   */
  testOnlyDial?: Dial;
  connectTimeoutMs?: number;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the credential: never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export function createEgressProxy(deps: EgressProxyDeps): Server {
  const resolve = deps.resolve ?? systemResolve;
  const dial: Dial = deps.testOnlyDial ?? ((address, port) => connect({ host: address, port }));
  const connectTimeoutMs = deps.connectTimeoutMs ?? 10_000;

  /** The destination for a request, or a refusal (status and reason) to send instead. */
  async function decide(
    req: IncomingMessage,
    host: string,
  ): Promise<Route | { ok: false; status: 407 | 503; reason: string }> {
    const replId = egressProxyRepl(deps.secret, req.headers["proxy-authorization"]);
    if (!replId)
      return { ok: false, status: 407, reason: "proxy credentials missing or wrong (use the repl's HTTP_PROXY)" };
    let policy: Awaited<ReturnType<PolicySource["get"]>>;
    try {
      policy = await deps.policies.get(replId);
    } catch (err) {
      deps.log.error({ err, replId }, "could not read the repl's egress policy");
      return { ok: false, status: 503, reason: "the egress policy could not be read; try again" };
    }
    if (!policy) return { ok: false, status: 403, reason: "this repl no longer exists" };
    const r = await route(policy, deps.ranges, host.toLowerCase(), resolve);
    if (!r.ok) deps.log.info({ replId, host, reason: r.reason }, "egress refused");
    return r;
  }

  /** The connection to an allowed address, destroyed if it does not open in time. */
  function open(address: string, port: number): Socket {
    const socket = dial(address, port);
    const timer = setTimeout(() => socket.destroy(new Error("connect timeout")), connectTimeoutMs);
    socket.once("connect", () => clearTimeout(timer));
    socket.once("close", () => clearTimeout(timer));
    return socket;
  }

  async function onConnect(req: IncomingMessage, client: Duplex, head: Buffer) {
    client.on("error", () => {});
    const target = splitHostPort(req.url ?? "");
    if (!target) return refuseRaw(client, 400, "CONNECT needs host:port");
    const r = await decide(req, target.host);
    if (!r.ok) return refuseRaw(client, r.status, r.reason);
    const upstream = open(r.address, target.port);
    let established = false;
    upstream.once("connect", () => {
      established = true;
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => {
      if (!established) refuseRaw(client, 502, `could not connect to ${target.host}:${target.port}`);
    });
    upstream.on("close", () => {
      if (established) client.destroy();
    });
    client.on("close", () => upstream.destroy());
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      return refuse(res, 400, "this is a proxy: send absolute URLs (http://host/path) or CONNECT");
    }
    if (url.protocol !== "http:") return refuse(res, 400, "only http:// is forwarded; use CONNECT for TLS");
    const r = await decide(req, url.hostname);
    if (!r.ok) return refuse(res, r.status, r.reason);
    const headers = endToEnd(req.headers);
    headers.host = url.host;
    const port = Number(url.port || 80);
    const upstream = request({
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      createConnection: () => open(r.address, port),
    });
    upstream.on("response", (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEnd(up.headers));
      up.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) refuse(res, 502, `could not reach ${url.host}`);
      else res.destroy();
    });
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err) => {
      deps.log.error({ err }, "proxy request failed");
      if (!res.headersSent) refuse(res, 502, "proxy error");
    });
  });
  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onConnect(req, socket, head).catch((err) => {
      deps.log.error({ err }, "CONNECT failed");
      socket.destroy();
    });
  });
  return server;
}

/** The headers without the hop-by-hop ones, including those the Connection header names. */
function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = String(headers.connection ?? "")
    .split(",")
    .map((t) => t.trim().toLowerCase());
  const out = { ...headers };
  for (const h of Object.keys(out)) if (HOP_BY_HOP.has(h) || named.includes(h)) delete out[h];
  return out;
}

/** "host:port" or "[v6]:port", as CONNECT names its target. */
function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

const statusText: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

function challenge(status: number): Record<string, string> {
  return status === 407 ? { "proxy-authenticate": 'Basic realm="devex-egress"' } : {};
}

function refuse(res: ServerResponse, status: number, reason: string) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close", ...challenge(status) });
  res.end(`${reason}\n`);
}

/** A refusal on a CONNECT socket: a complete HTTP response, then the connection ends. */
function refuseRaw(client: Duplex, status: number, reason: string) {
  const body = `${reason}\n`;
  const extra = Object.entries(challenge(status)).map(([k, v]) => `${k}: ${v}\r\n`);
  client.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\ncontent-type: text/plain; charset=utf-8\r\n${extra.join("")}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
