/**
 * Preview proxy: `/preview/<port>/<path>` (HTTP and WebSocket upgrades) is forwarded to
 * `127.0.0.1:<port>/<path>` inside the repl, with the prefix stripped.
 *
 * Who may open it follows the repl's preview rules (sharing.ts, access.ts): a public port anyone; a
 * private one the owner's preview token; a port shared by link also that port's preview links. The
 * token comes as `Authorization: Bearer <token>`, or `?token=<token>` (the runner then sets an
 * HttpOnly cookie scoped to `/preview/<port>/`, so the page's sub-resources work, removes the token
 * from the forwarded URL and, for a page opened in a tab, redirects to the URL without it), or that
 * cookie. A browser opening a private preview without a token is sent to core to sign in (core
 * checks it is the owner's and sends it back with a token). The runner's token is never forwarded,
 * nor is any platform cookie (`devex_…`, lib/kit/cookies.ts): on a host shared with core the
 * browser sends core's session cookie with every preview request, and the user's dev server must
 * not receive it.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { RunnerRoute } from "../../../../lib/contracts/runner-access.js";
import { isPlatformCookie, readCookie, withoutCookies } from "../../../../lib/kit/cookies.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import { bearerToken, type TokenClaims } from "../../../../lib/kit/tokens.js";
import type { ActivityTracker } from "../activity.js";
import type { RunnerAuth } from "../auth.js";
import { checkPreviewAccess, PreviewRefused } from "./access.js";
import {
  isNavigation,
  PREVIEW_COOKIE,
  previewCookie,
  relativeSelf,
  signInUrl,
  strippedPrefix,
  withoutToken,
} from "./browser.js";
import type { PreviewRules } from "./sharing.js";

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
  replId: string;
  /** The repl's preview rules as core last sent them. */
  rules: () => PreviewRules;
}

interface Target {
  port: number;
  path: string;
  /** Set-Cookie keeping the token the URL brought (when that token let the request in). */
  cookie: string | undefined;
}

/** The request as the user's server gets it: no hop-by-hop headers, credentials or platform cookies. */
function forwardHeaders(req: IncomingMessage | HttpRequest, port: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(":") || HOP_BY_HOP.has(k) || v === undefined) continue;
    out[k] = v;
  }
  const cookie = withoutCookies(req.headers.cookie as string | undefined, isPlatformCookie);
  if (cookie) out.cookie = cookie;
  else delete out.cookie;
  if (typeof out.referer === "string") out.referer = withoutToken(out.referer);
  out.host = `127.0.0.1:${port}`;
  out["x-forwarded-prefix"] = `${RunnerRoute.preview}${port}`;
  return out;
}

/** Sends the request on to the user's server and its answer back, adding the preview cookie when there is one. */
function forwardHttp(
  req: HttpRequest,
  res: HttpResponse,
  { port, path, cookie }: { port: number; path: string; cookie: string | undefined },
  log: Logger,
) {
  const upstream = httpRequest(
    { host: "127.0.0.1", port, method: req.method, path, headers: forwardHeaders(req, port) },
    (up) => {
      const headers: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
      if (cookie) {
        const existing = headers["set-cookie"];
        headers["set-cookie"] = [...(Array.isArray(existing) ? existing : existing ? [String(existing)] : []), cookie];
      }
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res as NodeJS.WritableStream);
    },
  );
  upstream.on("error", (err) => {
    log.debug({ err, port }, "preview upstream failed");
    if (!res.headersSent) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`nothing answered on port ${port} in the repl: start your server listening on 127.0.0.1:${port}\n`);
    } else res.end();
  });
  req.pipe(upstream);
}

/** Joins a WebSocket (or other upgrade) to the user's server. */
function forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, port: number, path: string) {
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
}

const statusOf: Record<string, number> = {
  unauthenticated: 401,
  "permission-denied": 403,
  "invalid-argument": 400,
  "not-found": 404,
};

export function createPreviewProxy(d: PreviewDeps) {
  /** Parses and authenticates; returns undefined for paths that are not previews. */
  function target(req: IncomingMessage | HttpRequest): Target | undefined {
    const m = PREFIX.exec(req.url ?? "");
    if (!m) return undefined;
    const port = Number(m[1]);
    if (port < 1 || port > 65535 || port === d.ownPort()) {
      throw new DomainError("invalid-argument", `port ${m[1]} cannot be previewed`);
    }
    // Reached below a host every repl shares (an ingress stripped /<replId>): not where this repl's previews are.
    if (d.rules().ownOrigin && req.headers["x-forwarded-prefix"]) {
      throw new DomainError(
        "not-found",
        "this repl's previews are served on its own origin: open its preview_url_template",
      );
    }
    const query = new URLSearchParams(m[3]?.slice(1) ?? "");
    const fromQuery = query.get("token") ?? undefined;
    query.delete("token");
    const qs = query.toString();
    const path = `${m[2] ?? "/"}${qs ? `?${qs}` : ""}`;
    const bearer = bearerToken(req.headers.authorization as string | undefined);
    const fromCookie = readCookie(req.headers.cookie as string | undefined, PREVIEW_COOKIE);
    const cookiePath = `${strippedPrefix(req, d.replId)}${RunnerRoute.preview}${port}/`;
    let claims: TokenClaims | undefined;
    try {
      try {
        claims = checkPreviewAccess(d.auth, d.rules(), port, bearer ?? fromQuery ?? fromCookie);
      } catch (e) {
        // A cookie left from a link that expired, or was revoked, must not lock its browser out (the
        // owner signs in again): the request goes on as one without a token, and the cookie goes.
        if (bearer || fromQuery || !fromCookie || !(e instanceof PreviewRefused)) throw e;
        claims = checkPreviewAccess(d.auth, d.rules(), port, undefined);
      }
    } catch (e) {
      if (e instanceof PreviewRefused) {
        e.path = path;
        if (fromCookie) e.clearCookie = `${PREVIEW_COOKIE}=; Path=${cookiePath}; Max-Age=0`;
      }
      throw e;
    }
    d.activity.touch();
    // The token in the address, if that is what let the request in, is kept in a cookie for the port.
    const keep =
      claims && fromQuery && !bearer
        ? previewCookie(req, fromQuery, cookiePath, claims.exp - Date.now() / 1000)
        : undefined;
    return { port, path, cookie: keep };
  }

  /** Where a browser refused a private preview signs in, or undefined. */
  function signInFor(req: IncomingMessage | HttpRequest, err: unknown): string | undefined {
    const signIn = d.rules().signInUrl;
    if (!(err instanceof PreviewRefused) || !err.signInHelps || !signIn || !isNavigation(req)) return undefined;
    return signInUrl(signIn, d.replId, PREFIX.exec(req.url ?? "")?.[1] ?? "", err.path ?? "/");
  }

  function http(req: HttpRequest, res: HttpResponse): boolean {
    let t: Target | undefined;
    try {
      t = target(req);
    } catch (e) {
      const err = e as DomainError;
      const signIn = signInFor(req, err);
      const headers: OutgoingHttpHeaders = { "cache-control": "no-store" };
      if (err instanceof PreviewRefused && err.clearCookie) headers["set-cookie"] = err.clearCookie;
      if (signIn) res.writeHead(302, { ...headers, location: signIn });
      else res.writeHead(statusOf[err.kind] ?? 400, { ...headers, "content-type": "text/plain" });
      res.end(signIn ? "" : `${err.message}\n`);
      return true;
    }
    if (!t) return false;
    const { port, path, cookie } = t;
    // A page opened in a tab: keep the token out of its address bar, history and Referer.
    if (cookie && req.method === "GET" && req.headers["sec-fetch-dest"] === "document") {
      res.writeHead(302, { location: relativeSelf(path), "set-cookie": cookie, "cache-control": "no-store" });
      res.end();
      return true;
    }
    forwardHttp(req, res, { port, path, cookie }, d.log);
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
    forwardUpgrade(req, socket, head, port, path);
    return true;
  }

  return { http, upgrade };
}
