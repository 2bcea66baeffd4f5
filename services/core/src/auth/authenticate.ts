/**
 * Authenticates every call (Health excepted). RunnerControlService accepts only a runner's control
 * credential (a signed token with aud "runner-control"); every other service accepts an API token
 * ("Authorization: Bearer dvx_...") or the browser session cookie, and nothing else, and then only
 * the calls its scopes open (scopes.ts, checked by `scopeInterceptor` right after).
 */
import type { Interceptor } from "@connectrpc/connect";
import { RunnerControlService } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { ALL_API_SCOPES, effectiveScopes } from "../../../../lib/contracts/api-scopes.js";
import { Audience } from "../../../../lib/contracts/runner-access.js";
import { readCookie } from "../../../../lib/kit/cookies.js";
import { unauthenticated } from "../../../../lib/kit/errors.js";
import { bearerToken, type TokenVerifier } from "../../../../lib/kit/tokens.js";
import type { StateStore } from "../state/store.js";
import { SESSION_COOKIE } from "./cookies.js";
import { type Principal, principalKey } from "./principal.js";
import { checkScopes } from "./scopes.js";
import { API_TOKEN_PREFIX, sha256 } from "./secrets.js";

const TOUCH_EVERY_MS = 60_000;

export function createAuthenticator(state: StateStore, verifier: TokenVerifier, signInUrl: () => string) {
  const user = async (headers: Headers, method: { service: string }): Promise<Principal> => {
    const bearer = bearerToken(headers.get("authorization"));
    if (method.service === RunnerControlService.typeName) {
      if (!bearer) throw unauthenticated("missing runner credential");
      const claims = verifier.verify(bearer, { aud: Audience.runnerControl });
      return { kind: "runner", runnerId: claims.sub, replId: claims.repl, expireTime: claims.exp * 1000 };
    }
    if (bearer) {
      if (!bearer.startsWith(API_TOKEN_PREFIX)) throw unauthenticated("not an API token: expected dvx_...");
      const hash = sha256(bearer);
      const token = await state.getApiTokenByHash(hash);
      if (!token) throw unauthenticated("invalid, revoked or expired API token");
      const now = Date.now();
      if (now - token.lastUseTime > TOUCH_EVERY_MS) void state.touchApiToken(hash, now).catch(() => {});
      const scopes = effectiveScopes(token.scopes);
      return {
        kind: "user",
        userId: token.userId,
        method: "api-token",
        tokenId: token.tokenId,
        scopes,
        tokenExpireTime: token.expireTime,
      };
    }
    const cookie = readCookie(headers.get("cookie"), SESSION_COOKIE);
    if (cookie) {
      const sessionHash = sha256(cookie);
      const session = await state.getWebSession(sessionHash);
      if (session)
        return { kind: "user", userId: session.userId, method: "session", sessionHash, scopes: [...ALL_API_SCOPES] };
      throw unauthenticated(`session expired: sign in again at ${signInUrl()}`);
    }
    throw unauthenticated(`not signed in: sign in at ${signInUrl()} or send "Authorization: Bearer <API token>"`);
  };
  return user;
}

/**
 * Refuses the calls a user's scopes do not open. Its own interceptor, after authentication, so the
 * principal is in the context when it refuses (the audit log records the refusal and who made it).
 */
export function scopeInterceptor(): Interceptor {
  return (next) => async (req) => {
    const p = req.contextValues.get(principalKey);
    if (p?.kind === "user") checkScopes(p.scopes, { service: req.service.typeName, name: req.method.name });
    return next(req);
  };
}
