/**
 * Browser sign-in routes, mounted through the server kit's `http` hook:
 *   GET  /auth/login                 → GitHub sign-in (or, embedded, explains where the link is)
 *   GET  /auth/login?code=<code>     → a one-time login link (login-links.ts): printed at start in the
 *                                      embedded setup, or made by the operator's CLI
 *   GET  /auth/connect/github[/callback] → grant's OAuth 2.0 flow (state checked)
 *   POST /auth/device/{code,token}   → the device login of `devex login` (device-login.ts)
 *   POST /auth/logout                → ends the session
 * After GitHub answers, the user id is the lower-cased login, and a server-side session (cookie:
 * HttpOnly, SameSite=Lax, Secure on https) is opened. With `repositories` (the default) core asks
 * for the scope "repo" and keeps the access token sealed in the user's record (repl/github.ts), for
 * repls from their GitHub repositories; otherwise grant uses it once to fetch /user and it is dropped.
 */
import grantModule from "grant";
import { readCookie } from "../../../../lib/kit/cookies.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import { Credential } from "../audit/event.js";
import type { AuditRecorder } from "../audit/recorder.js";
import { recordRoute } from "../audit/routes.js";
import { type GitHubHosts, sealGrant } from "../repl/github.js";
import type { SecretBox } from "../repl/secret-box.js";
import type { StateStore } from "../state/store.js";
import { clearSessionCookie, SESSION_COOKIE } from "./cookies.js";
import { deviceLoginRoutes } from "./device-login.js";
import { redeemLoginCode } from "./login-links.js";
import { userIdPattern } from "./principal.js";
import { sha256 } from "./secrets.js";
import { openSession } from "./sessions.js";

export interface GitHubOptions {
  clientId: string;
  clientSecret: string;
  /** Overrides for tests (a fake GitHub); default to github.com. */
  authorizeUrl?: string;
  accessUrl?: string;
  profileUrl?: string;
  /** The API and git hosts (GitHub Enterprise, or a test's); default github.com's. */
  hosts?: GitHubHosts;
  /** Ask for access to the user's repositories (scope "repo") and keep the grant; default true. */
  repositories?: boolean;
}

export interface WebAuthOptions {
  publicUrl: string;
  state: StateStore;
  log: Logger;
  /** Secret that signs grant's short-lived OAuth cookie (state parameter). */
  cookieSecret: string;
  github?: GitHubOptions;
  /** Seals the GitHub grants kept. */
  secrets: SecretBox;
  /** Where to send the browser after signing in. */
  afterLogin?: string;
  /** The audit log, which records sign-ins, sign-outs and device logins' tokens. */
  audit?: AuditRecorder;
  /** X-Forwarded-For names the client (DEVEX_TRUST_PROXY). */
  trustProxy?: boolean;
}

interface GitHubProfile {
  login?: string;
  name?: string;
  avatar_url?: string;
}

function page(res: HttpResponse, status: number, text: string, headers: Record<string, string | string[]> = {}) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(`${text}\n`);
}

function redirect(res: HttpResponse, location: string, cookies: string[] = []) {
  res.writeHead(302, { location, "cache-control": "no-store", ...(cookies.length ? { "set-cookie": cookies } : {}) });
  res.end();
}

export function createWebAuth(options: WebAuthOptions): HttpHandler {
  const { state, log } = options;
  const secure = options.publicUrl.startsWith("https:");
  const afterLogin = options.afterLogin ?? "/";
  const audit = options.audit && { recorder: options.audit, trustProxy: options.trustProxy ?? false };
  const keepsGrant = options.github?.repositories ?? true;

  const oauth = options.github
    ? grantModule.default.node({
        config: {
          defaults: {
            origin: options.publicUrl.replace(/\/+$/, ""),
            prefix: "/auth/connect",
            transport: "state",
            state: true,
            response: ["tokens", "profile"],
          },
          github: {
            key: options.github.clientId,
            secret: options.github.clientSecret,
            scope: keepsGrant ? ["repo"] : [],
            ...(options.github.authorizeUrl ? { authorize_url: options.github.authorizeUrl } : {}),
            ...(options.github.accessUrl ? { access_url: options.github.accessUrl } : {}),
            ...(options.github.profileUrl ? { profile_url: options.github.profileUrl } : {}),
          },
        },
        session: {
          name: "devex_oauth",
          secret: options.cookieSecret,
          cookie: { path: "/auth", httpOnly: true, sameSite: "lax", secure, maxAge: 600 /* seconds */ },
        },
      })
    : undefined;

  async function finishGitHub(req: HttpRequest, res: HttpResponse): Promise<void> {
    const result = await oauth!(req, res, {} as never);
    if (result.redirect) return; // grant is sending the browser to GitHub
    // The node handler's session object (its typings describe a store, not this) clears grant's cookie.
    const flow = result.session as unknown as { remove(): Promise<void>; headers: Record<string, string[]> };
    await flow.remove();
    const grantCookies = flow.headers["set-cookie"] ?? [];
    const response = result.response as { error?: unknown; profile?: GitHubProfile; access_token?: string } | undefined;
    const login = response?.profile?.login?.toLowerCase();
    if (!response || response.error || !login || !userIdPattern.test(login)) {
      log.warn({ error: response?.error }, "GitHub sign-in failed");
      page(res, 401, "GitHub sign-in failed. Try again from the start page.", { "set-cookie": grantCookies });
      return;
    }
    await state.putUser({
      userId: login,
      displayName: response.profile?.name || response.profile?.login || login,
      avatarUrl: response.profile?.avatar_url ?? "",
      ...(keepsGrant && response.access_token
        ? { github: sealGrant(options.secrets, login, response.access_token) }
        : {}),
    });
    const cookie = await openSession(state, login, secure);
    log.info({ userId: login }, "signed in with GitHub");
    recordRoute(audit, req, { rpc: "auth/login", userId: login, tokenId: Credential.github });
    redirect(res, afterLogin, [...grantCookies, cookie]);
  }

  async function linkLogin(req: HttpRequest, res: HttpResponse, code: string | null): Promise<void> {
    const another = "get a new one on core's machine: node dist/core/cli.mjs login-link";
    if (!code) {
      page(res, 401, `Sign in with the login link core printed when it started, or ${another}`);
      return;
    }
    const userId = await redeemLoginCode(state, code);
    if (!userId) {
      page(res, 403, `This login link is invalid, expired or was already used: ${another}`);
      return;
    }
    // A user who signed in with GitHub before keeps the name and avatar GitHub gave.
    if (!(await state.getUser(userId))) await state.putUser({ userId, displayName: userId, avatarUrl: "" });
    log.info({ userId }, "signed in with a login link");
    recordRoute(audit, req, { rpc: "auth/login", userId, tokenId: Credential.link });
    redirect(res, afterLogin, [await openSession(state, userId, secure)]);
  }

  async function logout(req: HttpRequest, sessionHash: string): Promise<void> {
    const session = await state.getWebSession(sessionHash);
    await state.deleteWebSession(sessionHash);
    if (session) recordRoute(audit, req, { rpc: "auth/logout", userId: session.userId, tokenId: Credential.session });
  }

  const device = deviceLoginRoutes({
    state,
    publicUrl: options.publicUrl,
    log,
    audit,
    trustProxy: options.trustProxy ?? false,
  });

  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://core");
    if (!url.pathname.startsWith("/auth/")) return false;
    if (url.pathname.startsWith("/auth/device/")) return device(req, res);
    if (url.pathname.startsWith("/auth/connect/")) {
      if (oauth) await finishGitHub(req, res);
      else page(res, 404, "GitHub sign-in is not configured");
      return true;
    }
    if (url.pathname === "/auth/login" && req.method === "GET") {
      if (url.searchParams.has("code") || !oauth) await linkLogin(req, res, url.searchParams.get("code"));
      else redirect(res, "/auth/connect/github");
      return true;
    }
    if (url.pathname === "/auth/logout" && req.method === "POST") {
      const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (cookie) await logout(req, sha256(cookie));
      res.writeHead(303, { location: afterLogin, "set-cookie": clearSessionCookie(secure) });
      res.end();
      return true;
    }
    return false;
  };
}
