/**
 * What the preview proxy does for browsers: tell a page a user opened from a script's request, send
 * a refused one to sign in, keep a token from the address in a cookie for the port's path (where
 * the browser sees that path), and take the token out of the address bar.
 */
import type { IncomingMessage } from "node:http";
import { PLATFORM_COOKIE_PREFIX } from "../../../../lib/kit/cookies.js";
import type { HttpRequest } from "../../../../lib/kit/server.js";

export const PREVIEW_COOKIE = `${PLATFORM_COOKIE_PREFIX}preview`;

/** A page opened by the user (a tab or a frame), which can be sent to sign in. */
export const isNavigation = (req: IncomingMessage | HttpRequest) =>
  req.method === "GET" &&
  (req.headers["sec-fetch-mode"] === "navigate" ||
    (!req.headers["sec-fetch-mode"] && /text\/html/.test(String(req.headers.accept ?? ""))));

/**
 * The path prefix an ingress stripped before the runner (Traefik's StripPrefix on Kubernetes sends
 * `X-Forwarded-Prefix: /<replId>`), so the cookie's path matches the URL the browser sees; core's
 * embedded proxy sends none and rewrites cookie paths itself.
 */
export function strippedPrefix(req: IncomingMessage | HttpRequest, replId: string): string {
  return req.headers["x-forwarded-prefix"] === `/${replId}` ? `/${replId}` : "";
}

/** This URL without its token, relative (the runner does not know the prefix it is reached under). */
export function relativeSelf(path: string): string {
  const [p, qs] = path.split("?", 2);
  const last = p.slice(p.lastIndexOf("/") + 1);
  return `./${last}${qs ? `?${qs}` : ""}`;
}

/** Core's preview sign-in for this page: it checks the browser is the owner's and sends it back. */
export function signInUrl(signIn: string, replId: string, port: string, path: string): string {
  const url = new URL(signIn);
  url.searchParams.set("repl", replId);
  url.searchParams.set("port", port);
  url.searchParams.set("path", path);
  return url.toString();
}

/**
 * The cookie that keeps a preview token for one port's path, as long as the token lasts. In a frame
 * of another site (the IDE's preview pane: each repl's previews have an origin, and so a site, of
 * their own) a SameSite=Lax cookie would not come back with the page's own requests: there it is a
 * partitioned cookie (CHIPS), kept for that one embedding site, which needs Secure (browsers
 * accept that on http://*.localhost, a secure context).
 */
export function previewCookie(
  req: IncomingMessage | HttpRequest,
  token: string,
  path: string,
  maxAgeSeconds: number,
): string {
  const framed = req.headers["sec-fetch-site"] === "cross-site" && req.headers["sec-fetch-dest"] === "iframe";
  const secure = framed || req.headers["x-forwarded-proto"] === "https";
  const site = framed ? "SameSite=None; Partitioned" : "SameSite=Lax";
  return `${PREVIEW_COOKIE}=${encodeURIComponent(token)}; Path=${path}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; HttpOnly; ${site}${secure ? "; Secure" : ""}`;
}

/** A Referer without the preview token (a page framed with ?token= keeps it in its URL). */
export function withoutToken(referer: string): string {
  try {
    const url = new URL(referer);
    if (!url.searchParams.has("token")) return referer;
    url.searchParams.delete("token");
    return url.toString();
  } catch {
    return referer;
  }
}
