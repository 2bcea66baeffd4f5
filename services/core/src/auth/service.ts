/** AuthService: who-am-I, API tokens, logout. */
import { create } from "@bufbuild/protobuf";
import { durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type ApiToken,
  ApiTokenSchema,
  AuthMethod,
  type AuthService,
  UserSchema,
} from "../../../../gen/devex/core/v1/auth_pb.js";
import type { ApiScope } from "../../../../lib/contracts/api-scopes.js";
import { notFound, permissionDenied } from "../../../../lib/kit/errors.js";
import type { ApiTokenRecord, StateStore } from "../state/store.js";
import { clearSessionCookie } from "./cookies.js";
import { normalizeUserCode } from "./device-login.js";
import type { UserOf, UserPrincipal } from "./principal.js";
import { DEFAULT_TOKEN_TTL_MS, issueApiToken } from "./secrets.js";

export function toApiToken(t: ApiTokenRecord): ApiToken {
  return create(ApiTokenSchema, {
    tokenId: t.tokenId,
    name: t.name,
    createTime: timestampFromMs(t.createTime),
    expireTime: t.expireTime ? timestampFromMs(t.expireTime) : undefined,
    lastUseTime: t.lastUseTime ? timestampFromMs(t.lastUseTime) : undefined,
    scopes: t.scopes ?? [],
  });
}

export function createAuthService(
  state: StateStore,
  userOf: UserOf,
  options: { secureCookies: boolean },
): ServiceImpl<typeof AuthService> {
  return {
    async getCurrentUser(_req, ctx) {
      const p = userOf(ctx);
      const u = await state.getUser(p.userId);
      return {
        user: create(UserSchema, {
          userId: p.userId,
          displayName: u?.displayName || p.userId,
          avatarUrl: u?.avatarUrl ?? "",
        }),
        authMethod: p.method === "session" ? AuthMethod.SESSION : AuthMethod.API_TOKEN,
        scopes: p.scopes,
        githubGrant: Boolean(u?.github),
      };
    },
    async createApiToken(req, ctx) {
      const p = userOf(ctx);
      const asked = req.ttl ? durationMs(req.ttl) : DEFAULT_TOKEN_TTL_MS;
      // A token made with a token expires no later than it, so a leaked one cannot outlive its maker.
      // One clock reading: a second one a millisecond later would put the expiry past the maker's.
      const now = Date.now();
      const ttl = p.tokenExpireTime ? Math.max(1, Math.min(asked, p.tokenExpireTime - now)) : asked;
      const { record, secret } = await issueApiToken(state, p.userId, req.name, ttl, now, grantable(p, req.scopes));
      return { token: toApiToken(record), secret };
    },
    async listApiTokens(_req, ctx) {
      const tokens = await state.listApiTokens(userOf(ctx).userId);
      tokens.sort((a, b) => b.createTime - a.createTime);
      return { tokens: tokens.map(toApiToken) };
    },
    async getDeviceLogin(req, ctx) {
      sessionOnly(userOf(ctx));
      const grant = await pendingGrant(state, req.userCode);
      return {
        clientName: grant.clientName,
        scopes: grant.scopes ?? [],
        createTime: timestampFromMs(grant.createTime),
        expireTime: timestampFromMs(grant.expireTime),
      };
    },
    async approveDeviceLogin(req, ctx) {
      const p = sessionOnly(userOf(ctx));
      const grant = await pendingGrant(state, req.userCode);
      const decision = req.approve ? { status: "approved" as const, userId: p.userId } : { status: "denied" as const };
      if (!(await state.decideDeviceGrant(grant.userCode, decision))) throw noDeviceLogin(req.userCode);
      return {};
    },
    async revokeApiToken(req, ctx) {
      if (!(await state.deleteApiToken(userOf(ctx).userId, req.tokenId))) {
        throw notFound(`API token ${req.tokenId} not found`);
      }
      return {};
    },
    async logout(_req, ctx) {
      const p = userOf(ctx);
      if (p.sessionHash) await state.deleteWebSession(p.sessionHash);
      ctx.responseHeader.append("set-cookie", clearSessionCookie(options.secureCookies));
      return {};
    },
  };
}

/** Device logins are answered in a browser the user is signed in with, never with an API token. */
function sessionOnly(p: UserPrincipal): UserPrincipal {
  if (p.method !== "session")
    throw permissionDenied("answer a device login in the browser you are signed in with, not with an API token");
  return p;
}

const noDeviceLogin = (typed: string) =>
  notFound(`no device login waits for the code ${typed}: it expired or was answered; run devex login again`);

/** The device login waiting for this user code, or NotFound. */
async function pendingGrant(state: StateStore, typed: string) {
  const code = normalizeUserCode(typed);
  const grant = code ? await state.getDeviceGrant(code) : undefined;
  if (grant?.status !== "pending") throw noDeviceLogin(typed);
  return grant;
}

/**
 * The scopes a new token gets: those asked for (none: all the caller may), never more than the
 * caller's own, so a scoped token cannot make a stronger one.
 */
function grantable(p: UserPrincipal, asked: readonly string[]): readonly string[] {
  const wanted = asked.length ? asked : p.scopes;
  const beyond = wanted.filter((s) => !p.scopes.includes(s as ApiScope));
  if (beyond.length)
    throw permissionDenied(
      `this API token may not give a new token the scope ${beyond.join(", ")}: it does not have it`,
    );
  return wanted;
}
