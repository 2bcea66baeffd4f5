/**
 * Preview proxy: `/preview/<port>/<path>` (HTTP and WebSocket upgrades) is forwarded to
 * `127.0.0.1:<port>/<path>` inside the repl, with the prefix stripped.
 *
 * Auth: `Authorization: Bearer <token>`, or `?token=<token>` (the runner then sets an HttpOnly
 * cookie scoped to `/preview/<port>/`, so the page's sub-resources work, and removes the token from
 * the forwarded URL), or that cookie. The runner's token is never forwarded, nor is any platform
 * cookie (`devex_…`, lib/kit/cookies.ts): on a host shared with core the browser sends core's
 * session cookie with every preview request, and the user's dev server must not receive it.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { RunnerRoute, RunnerScope } from "../../../../lib/contracts/runner-access.js";
import { isPlatformCookie, PLATFORM_COOKIE_PREFIX, readCookie, withoutCookies } from "../../../../lib/kit/cookies.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import { bearerToken } from "../../../../lib/kit/tokens.js";
import type { ActivityTracker } from "../activity.js";
import type { RunnerAuth } from "../auth.js";

export const PREVIEW_COOKIE = `${PLATFORM_COOKIE_PREFIX}preview`;
const PREFIX = new RegExp(`^${RunnerRoute.preview}(\\d{1,5})(/[^?]*)?(\\?.*)?$`);
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "authorization",
]);

export interface PreviewDeps {
  auth: RunnerAuth;
  activity: ActivityTracker;
  log: Logger;
  /** The runner's own port, never proxied to. */
  ownPort: () => number;
}

interface Target {
  port: number;
  path: string;
  tokenFromQuery: boolean;
}

const statusOf: Record<string, number> = { unauthenticated: 401, "permission-denied": 403, "invalid-argument": 400 };

export function createPreviewProxy(d: PreviewDeps) {
  /** Parses and authenticates; returns undefined for paths that are not previews. */
  function target(req: IncomingMessage | HttpRequest): Target | undefined {
    const m = PREFIX.exec(req.url ?? "");
    if (!m) return undefined;
    const port = Number(m[1]);
    if (port < 1 || port > 65535 || port === d.ownPort()) {
      throw new DomainError("invalid-argument", `port ${m[1]} cannot be previewed`);
    }
    const query = new URLSearchParams(m[3]?.slice(1) ?? "");
    const fromQuery = query.get("token") ?? undefined;
    const headers = req.headers as Record<string, string | string[] | undefined>;
    const token =
      bearerToken(headers.authorization as string | undefined) ??
      fromQuery ??
      readCookie(headers.cookie as string | undefined, PREVIEW_COOKIE);
    d.auth.user(token, RunnerScope.preview);
    query.delete("token");
    const qs = query.toString();
    d.activity.touch();
    return { port, path: `${m[2] ?? "/"}${qs ? `?${qs}` : ""}`, tokenFromQuery: fromQuery !== undefined };
  }

  function forwardHeaders(req: IncomingMessage | HttpRequest, port: number): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith(":") || HOP_BY_HOP.has(k) || v === undefined) continue;
      out[k] = v;
    }
    const cookie = withoutCookies(req.headers.cookie as string | undefined, isPlatformCookie);
    if (cookie) out.cookie = cookie;
    else delete out.cookie;
    out.host = `127.0.0.1:${port}`;
    out["x-forwarded-prefix"] = `${RunnerRoute.preview}${port}`;
    return out;
  }

  function http(req: HttpRequest, res: HttpResponse): boolean {
    let t: Target | undefined;
    try {
      t = target(req);
    } catch (e) {
      const err = e as DomainError;
      res.writeHead(statusOf[err.kind] ?? 400, { "content-type": "text/plain" });
      res.end(`${err.message}\n`);
      return true;
    }
    if (!t) return false;
    const { port, path, tokenFromQuery } = t;
    const upstream = httpRequest(
      { host: "127.0.0.1", port, method: req.method, path, headers: forwardHeaders(req, port) },
      (up) => {
        const headers: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
        if (tokenFromQuery) {
          const token = new URLSearchParams((req.url ?? "").split("?")[1] ?? "").get("token") ?? "";
          const cookie = `${PREVIEW_COOKIE}=${encodeURIComponent(token)}; Path=${RunnerRoute.preview}${port}/; HttpOnly; SameSite=Lax`;
          const existing = headers["set-cookie"];
          headers["set-cookie"] = [
            ...(Array.isArray(existing) ? existing : existing ? [String(existing)] : []),
            cookie,
          ];
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res as NodeJS.WritableStream);
      },
    );
    upstream.on("error", (err) => {
      d.log.debug({ err, port }, "preview upstream failed");
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`nothing answered on port ${port} in the repl: start your server listening on 127.0.0.1:${port}\n`);
      } else res.end();
    });
    req.pipe(upstream);
    return true;
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let t: Target | undefined;
    try {
      t = target(req);
    } catch (e) {
      const err = e as DomainError;
      const body = `${err.message}\n`;
      socket.end(
        `HTTP/1.1 ${statusOf[err.kind] ?? 400} Refused\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return true;
    }
    if (!t) return false;
    const { port, path } = t;
    const upstream = connect(port, "127.0.0.1");
    upstream.on("connect", () => {
      const headers = forwardHeaders(req, port);
      headers.connection = "Upgrade";
      headers.upgrade = req.headers.upgrade;
      let head2 = `${req.method} ${path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) {
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) head2 += `${k}: ${one}\r\n`;
      }
      upstream.write(`${head2}\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => {
      socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    socket.on("error", () => upstream.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    return true;
  }

  return { http, upgrade };
}
