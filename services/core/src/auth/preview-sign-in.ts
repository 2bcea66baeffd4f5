/**
 * GET /auth/preview?repl=<id>&port=<n>&path=<page>: where a runner sends a browser that opened a
 * private preview without a token. Signed in to core as the repl's owner, the browser goes back to
 * the page with a fresh preview token for that repl (the runner then keeps it in a cookie for the
 * port and drops it from the address bar); not signed in, it goes to the web client's /preview page,
 * which signs in first and comes back here; anyone else is told the preview is not theirs, exactly
 * as for a repl that does not exist.
 */
import { Audience, PREVIEW_SCOPES } from "../../../../lib/contracts/runner-access.js";
import { readCookie } from "../../../../lib/kit/cookies.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { HttpHandler, HttpResponse } from "../../../../lib/kit/server.js";
import { Credential } from "../audit/event.js";
import { type RouteAudit, recordRoute } from "../audit/routes.js";
import type { ReplDeps } from "../repl/deps.js";
import { previewPageUrl, previewRoot } from "../repl/preview-sharing.js";
import { PREVIEW_SIGN_IN_PATH } from "../runnercontrol/preview-sharing.js";
import { SESSION_COOKIE } from "./cookies.js";
import { sha256 } from "./secrets.js";

/** A browser's preview token lives as long as this; an expired one signs in again the same way. */
const PREVIEW_SIGN_IN_TTL_SECONDS = 3600;
const REPL_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function page(res: HttpResponse, status: number, text: string) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(`${text}\n`);
}

function redirect(res: HttpResponse, location: string) {
  res.writeHead(302, { location, "cache-control": "no-store" });
  res.end();
}

/** The request's repl, port and page, or why they are not valid. */
function parse(url: URL): { replId: string; port: number; path: string } | string {
  const replId = url.searchParams.get("repl") ?? "";
  const port = Number(url.searchParams.get("port"));
  const path = url.searchParams.get("path") || "/";
  if (!REPL_ID.test(replId)) return "repl must be a repl id";
  if (!Number.isInteger(port) || port < 1 || port > 65535) return "port must be a number from 1 to 65535";
  // Appended below the preview's own root: it can only name a page of that preview.
  if (!path.startsWith("/") || path.length > 2048 || /\s/.test(path))
    return "path must start with / and hold no spaces";
  return { replId, port, path };
}

export function previewSignIn(deps: ReplDeps, audit?: RouteAudit): HttpHandler {
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://core");
    if (url.pathname !== PREVIEW_SIGN_IN_PATH || req.method !== "GET") return false;
    const target = parse(url);
    if (typeof target === "string") {
      page(res, 400, `This preview address is not valid: ${target}.`);
      return true;
    }
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = cookie ? await deps.state.getWebSession(sha256(cookie)) : undefined;
    if (!session) {
      // The web client signs in and returns here; coming from it without a session would loop.
      if (url.searchParams.has("from")) page(res, 401, "Sign in to Devex in this browser to open private previews.");
      else redirect(res, `/preview${url.search}`);
      return true;
    }
    const repl = await deps.state.getRepl(target.replId);
    if (!repl || repl.owner !== session.userId) {
      page(res, 404, "This preview is private or does not exist: only its repl's owner can open it.");
      return true;
    }
    let root: string;
    try {
      root = await previewRoot(deps, repl.replId);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      page(res, 409, `Repl ${repl.name} is not running: start it, then open its preview again.`);
      return true;
    }
    const token = deps.signer.mint(
      { aud: Audience.runner, sub: session.userId, repl: repl.replId, scope: PREVIEW_SCOPES },
      PREVIEW_SIGN_IN_TTL_SECONDS,
    );
    try {
      redirect(res, previewPageUrl(root, target.port, target.path, token));
      const event = {
        rpc: "auth/preview" as const,
        userId: session.userId,
        tokenId: Credential.session,
        replId: repl.replId,
      };
      recordRoute(audit, req, { ...event, details: { port: String(target.port) } });
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      page(res, 400, `This preview address is not valid: ${err.message}.`);
    }
    return true;
  };
}
