/**
 * Core forwards `/<replId>/<route>` to that repl's runner as `/<route>`, mirroring the Kubernetes
 * ingress route `<repl-host>/<repl-id>/<route>`. Clients that cannot put a prefix in front of their
 * paths (plain gRPC clients: grpc-js, grpcio, buf curl) name the repl in a `devex-repl-id` header
 * instead and call `/<route>` itself. HTTP/1.1 requests go on over HTTP/1.1 (Connect, the terminal
 * WebSocket bridge, the preview proxy's HTTP and WebSocket); HTTP/2 requests over HTTP/2
 * (h2-forward.ts: gRPC with its trailers, bidi streams, cancellation), over TCP or the runner's Unix
 * socket. Streams are piped, never buffered. The runner authenticates every request itself; core
 * adds only X-Forwarded-For (the client's address as core sees it, replacing whatever the client
 * sent: the runner trusts it on its Unix socket, for its audit events), and removes its own session
 * cookie, which the browser sends along (same host): a runner, and the user's dev server behind its
 * preview proxy, never see it.
 * Cookies and redirects the runner sets for `/…` are rewritten to `/<replId>/…`.
 *
 * Two scopes, served on two ports: "api" (core's own origin: every route but previews) and
 * "preview" (core's preview port, where each repl has an origin of its own, `<replId>.<preview
 * host>`, and its previews are `/preview/…` there). A user's dev server thus never runs on core's
 * origin, where its JavaScript could call core's API with the user's session, nor on another repl's.
 */
import { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, request } from "node:http";
import { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { connect } from "node:net";
import { type Duplex, pipeline } from "node:stream";
import { clientAddress } from "../../../../../lib/kit/client-address.js";
import { withoutCookies } from "../../../../../lib/kit/cookies.js";
import type { HttpHandler, HttpRequest, HttpResponse, UpgradeHandler } from "../../../../../lib/kit/server.js";
import { SESSION_COOKIE } from "../../auth/cookies.js";
import { replOfPreviewHost } from "../../repl/preview-origin.js";
import { createH2Forward } from "./h2-forward.js";
import type { RunnerTarget } from "./runner-handle.js";

const replPath = /^\/(r[0-9a-f]{12})(\/.*)?$/;
const replId = /^r[0-9a-f]{12}$/;
/** The request header that names the repl for clients that cannot prefix their paths. */
export const REPL_HEADER = "devex-repl-id";
const FORWARDED_FOR = "x-forwarded-for";
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
  "host",
]);

export interface RunnerProxy {
  http: HttpHandler;
  upgrade: UpgradeHandler;
  /** Closes the HTTP/2 sessions to runners. */
  close(): void;
}

export type ProxyScope = "api" | "preview";

interface Route {
  replId: string;
  /** The path (and query) the runner gets. */
  rest: string;
  preview: boolean;
  /** Named by the path prefix (cookie paths and redirects are rewritten to keep it) or the header. */
  byPrefix: boolean;
}

function split(url: string | undefined, header: string | string[] | undefined): Route | undefined {
  const [path, query] = (url ?? "/").split(/\?(.*)/s, 2);
  const m = replPath.exec(path);
  if (m) {
    const rest = m[2] || "/";
    const full = rest + (query !== undefined ? `?${query}` : "");
    return { replId: m[1], rest: full, preview: rest.startsWith("/preview/"), byPrefix: true };
  }
  if (typeof header !== "string" || !replId.test(header)) return undefined;
  return { replId: header, rest: url ?? "/", preview: path.startsWith("/preview/"), byPrefix: false };
}

/** A preview origin's request: the repl is its host's first label (preview-origin.ts); the path goes on as it is. */
function byHost(req: { url?: string; headers: IncomingHttpHeaders }): Route | undefined {
  const replId = replOfPreviewHost((req.headers[":authority"] as string | undefined) ?? req.headers.host);
  if (!replId) return undefined;
  const url = req.url ?? "/";
  return { replId, rest: url, preview: url.startsWith("/preview/"), byPrefix: false };
}

const wrongOrigin: Record<ProxyScope, string> = {
  api: "previews are served on core's preview origin (the repl's preview_url_template), not on this one\n",
  preview: "this origin serves previews only (<replId>.<preview host>/preview/<port>/…)\n",
};
const NOT_A_PREVIEW_HOST =
  "each repl's previews have an origin of their own: open <replId>.<this host>/preview/<port>/ (the repl's preview_url_template)\n";

/** Set by a prefix-stripping ingress (Traefik's StripPrefix); this proxy rewrites cookie paths itself instead. */
const FORWARDED_PREFIX = "x-forwarded-prefix";

/**
 * The request's headers as the runner gets them: without hop-by-hop ones, the routing header and
 * core's cookies. Over HTTP/1.1 with the runner's host; over HTTP/2 the authority names it, and
 * `te: trailers` (the one `te` HTTP/2 allows, which gRPC requires) goes on. A client's
 * X-Forwarded-Prefix is dropped: the runner would put it in its cookie paths, which this proxy
 * prefixes already.
 */
function forwardHeaders(
  h: IncomingHttpHeaders,
  target: URL,
  http2: boolean,
  client: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(":") || hopByHop.has(k) || k === REPL_HEADER || k === FORWARDED_PREFIX)
      continue;
    out[k] = v;
  }
  out[FORWARDED_FOR] = client;
  const cookie = withoutCoreCookies(h.cookie);
  if (cookie) out.cookie = cookie;
  else delete out.cookie;
  if (!http2) out.host = target.host;
  else if (h.te === "trailers") out.te = "trailers";
  return out;
}

/**
 * An answer given before the request's body was all read (a refusal, or the runner answering
 * early) closes the connection once sent: the rest of the body is not read, and a client still
 * writing it gets the answer and an end of stream instead of waiting on a connection nobody reads.
 * HTTP/1.1 says so with `Connection: close` (node then closes the socket after the response);
 * node's HTTP/2 server ends just that stream by itself (RST_STREAM NO_ERROR, RFC 9113 §8.1), and
 * HTTP/2 forbids the header.
 */
function closeAfterResponseIfEarly(req: HttpRequest, res: HttpResponse, headers: Record<string, string | string[]>) {
  if (!req.complete && !("stream" in res)) headers.connection = "close";
}

function answer(req: HttpRequest, res: HttpResponse, status: number, text: string) {
  if (res.destroyed) return;
  const headers: Record<string, string> = { "content-type": "text/plain" };
  closeAfterResponseIfEarly(req, res, headers);
  res.writeHead(status, headers);
  res.end(text);
}

const withoutCoreCookies = (header: string | undefined) => withoutCookies(header, (name) => name === SESSION_COOKIE);

function rewriteCookie(c: string, replId: string): string {
  return /;\s*path=/i.test(c)
    ? c.replace(/(;\s*path=)(\/[^;]*)/i, (_m, a: string, p: string) => `${a}/${replId}${p}`)
    : `${c}; Path=/${replId}/`;
}

/** The runner's response headers as the client gets them: a prefix route keeps its prefix in cookie paths and redirects. */
function responseHeaders(h: IncomingHttpHeaders | OutgoingHttpHeaders, m: Route): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || hopByHop.has(k)) continue;
    if (m.byPrefix && k === "set-cookie") out[k] = (v as string[]).map((c) => rewriteCookie(c, m.replId));
    else if (m.byPrefix && k === "location" && typeof v === "string" && v.startsWith("/")) out[k] = `/${m.replId}${v}`;
    else out[k] = typeof v === "number" ? String(v) : v;
  }
  return out;
}

/** An HTTP/1.1 request to the runner over HTTP/1.1. */
function forwardHttp1(req: HttpRequest, res: HttpResponse, t: RunnerTarget, m: Route, client: string) {
  const target = new URL(t.url);
  const upstream = request({
    ...(t.socketPath ? { socketPath: t.socketPath } : { host: target.hostname, port: target.port }),
    method: req.method,
    path: m.rest,
    headers: forwardHeaders(req.headers, target, false, client),
  });
  // Whichever side leaves first takes the other with it. A client that abandons a stream (or a
  // response that ends before its body was all sent) cancels the runner's side at once; the
  // runner's response headers may not even have arrived (a stream sends them with its first message).
  let response: IncomingMessage | undefined;
  res.once("close", () => {
    if (!response?.complete || !upstream.writableFinished) upstream.destroy();
  });
  upstream.on("response", (up: IncomingMessage) => {
    response = up;
    const headers = responseHeaders(up.headers, m);
    closeAfterResponseIfEarly(req, res, headers);
    res.writeHead(up.statusCode ?? 502, headers);
    pipeline(up, res as NodeJS.WritableStream, (err) => err && res.destroy());
  });
  upstream.on("error", () => {
    if (res.headersSent) res.destroy();
    else answer(req, res, 502, "the repl's runner did not answer\n");
  });
  (req as NodeJS.ReadableStream).pipe(upstream);
}

export function createRunnerProxy(
  targetFor: (replId: string) => RunnerTarget | undefined,
  scope: ProxyScope,
  /** Core is behind a proxy it trusts (DEVEX_TRUST_PROXY): the client is the last X-Forwarded-For address. */
  trustProxy = false,
): RunnerProxy {
  const refused = (m: { preview: boolean }) => m.preview !== (scope === "preview");
  const h2 = createH2Forward();
  return {
    http(req: HttpRequest, res: HttpResponse) {
      const m = scope === "api" ? split(req.url, req.headers[REPL_HEADER]) : byHost(req);
      if (!m && scope === "preview") {
        answer(req, res, 404, NOT_A_PREVIEW_HOST);
        return true;
      }
      if (!m) return false;
      if (refused(m)) {
        answer(req, res, 404, wrongOrigin[scope]);
        return true;
      }
      const t = targetFor(m.replId);
      if (!t) {
        answer(req, res, 503, `repl ${m.replId} is not running: start it first\n`);
        return true;
      }
      if (req instanceof Http2ServerRequest && res instanceof Http2ServerResponse) {
        const headers = forwardHeaders(req.headers, new URL(t.url), true, clientAddress(req, trustProxy));
        h2.forward(req, res, t, m.rest, headers, (h) => responseHeaders(h, m));
      } else forwardHttp1(req, res, t, m, clientAddress(req, trustProxy));
      return true;
    },
    close: () => h2.close(),

    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      // WebSockets come from browsers, which cannot set the header.
      const m = scope === "api" ? split(req.url, undefined) : byHost(req);
      if (!m && scope === "preview") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return true;
      }
      if (!m) return false;
      if (refused(m)) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return true;
      }
      const t = targetFor(m.replId);
      if (!t) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return true;
      }
      const target = new URL(t.url);
      const onConnect = () => {
        const lines = [`${req.method} ${m.rest} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          const k = req.rawHeaders[i];
          const name = k.toLowerCase();
          let value: string | undefined = req.rawHeaders[i + 1];
          if (name === "host") value = target.host;
          else if (name === "cookie") value = withoutCoreCookies(value);
          else if (name === FORWARDED_FOR) value = undefined;
          if (value !== undefined) lines.push(`${k}: ${value}`);
        }
        lines.push(`${FORWARDED_FOR}: ${clientAddress(req, trustProxy)}`);
        upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      };
      const upstream = t.socketPath
        ? connect(t.socketPath, onConnect)
        : connect(Number(target.port), target.hostname, onConnect).setNoDelay(true);
      const close = () => {
        upstream.destroy();
        socket.destroy();
      };
      upstream.on("error", close);
      socket.on("error", close);
      upstream.on("close", close);
      socket.on("close", close);
      return true;
    },
  };
}
