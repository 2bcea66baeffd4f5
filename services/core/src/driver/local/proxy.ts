/**
 * Core forwards `/<replId>/<route>` to that repl's runner as
 * `/<route>`, mirroring the Kubernetes ingress route `<repl-host>/<repl-id>/<route>`. Carries Connect
 * over HTTP/1.1 (streams are piped, never buffered), the terminal WebSocket bridge and the preview
 * proxy (HTTP and WebSocket), over TCP or the runner's Unix socket. The runner authenticates every request itself; core adds nothing,
 * and removes its own session cookie, which the browser sends along (same host): a runner, and
 * the user's dev server behind its preview proxy, never see it.
 * Cookies and redirects the runner sets for `/…` are rewritten to `/<replId>/…`.
 *
 * Two scopes, served on two origins: "api" (core's own origin: every route but previews) and
 * "preview" (core's preview origin: `/<replId>/preview/…` only). A user's dev server thus never
 * runs on core's origin, where its JavaScript could call core's API with the user's session.
 */
import { type IncomingHttpHeaders, type IncomingMessage, request } from "node:http";
import { connect } from "node:net";
import { type Duplex, pipeline } from "node:stream";
import { withoutCookies } from "../../../../../lib/kit/cookies.js";
import type { HttpHandler, HttpRequest, HttpResponse, UpgradeHandler } from "../../../../../lib/kit/server.js";
import { SESSION_COOKIE } from "../../auth/cookies.js";
import type { RunnerTarget } from "./local-driver.js";

const replPath = /^\/(r[0-9a-f]{12})(\/.*)?$/;
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
}

export type ProxyScope = "api" | "preview";

function split(url: string | undefined): { replId: string; rest: string; preview: boolean } | undefined {
  const [path, query] = (url ?? "/").split(/\?(.*)/s, 2);
  const m = replPath.exec(path);
  if (!m) return undefined;
  const rest = m[2] || "/";
  return { replId: m[1], rest: rest + (query !== undefined ? `?${query}` : ""), preview: rest.startsWith("/preview/") };
}

const wrongOrigin: Record<ProxyScope, string> = {
  api: "previews are served on core's preview origin (the repl's preview_url_template), not on this one\n",
  preview: "this origin serves previews only (/<replId>/preview/<port>/…)\n",
};

function forwardHeaders(h: IncomingHttpHeaders, target: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(":") || hopByHop.has(k)) continue;
    out[k] = v;
  }
  const cookie = withoutCoreCookies(h.cookie);
  if (cookie) out.cookie = cookie;
  else delete out.cookie;
  out.host = target.host;
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

export function createRunnerProxy(
  targetFor: (replId: string) => RunnerTarget | undefined,
  scope: ProxyScope,
): RunnerProxy {
  const refused = (m: { preview: boolean }) => m.preview !== (scope === "preview");
  return {
    http(req: HttpRequest, res: HttpResponse) {
      const m = split(req.url);
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
      const target = new URL(t.url);
      const upstream = request({
        ...(t.socketPath ? { socketPath: t.socketPath } : { host: target.hostname, port: target.port }),
        method: req.method,
        path: m.rest,
        headers: forwardHeaders(req.headers, target),
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
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) {
          if (v === undefined || hopByHop.has(k)) continue;
          if (k === "set-cookie") headers[k] = (v as string[]).map((c) => rewriteCookie(c, m.replId));
          else if (k === "location" && typeof v === "string" && v.startsWith("/")) headers[k] = `/${m.replId}${v}`;
          else headers[k] = v;
        }
        closeAfterResponseIfEarly(req, res, headers);
        res.writeHead(up.statusCode ?? 502, headers);
        pipeline(up, res as NodeJS.WritableStream, (err) => err && res.destroy());
      });
      upstream.on("error", () => {
        if (res.headersSent) res.destroy();
        else answer(req, res, 502, "the repl's runner did not answer\n");
      });
      (req as NodeJS.ReadableStream).pipe(upstream);
      return true;
    },

    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      const m = split(req.url);
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
          if (value !== undefined) lines.push(`${k}: ${value}`);
        }
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
