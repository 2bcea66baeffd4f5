/** Who is calling: a user (by session cookie or API token) or a runner (by its control credential). */
import type { HandlerContext } from "@connectrpc/connect";
import type { ApiScope } from "../../../../lib/contracts/api-scopes.js";
import { createPrincipalKey, principalOf } from "../../../../lib/kit/auth.js";
import { permissionDenied } from "../../../../lib/kit/errors.js";

export interface UserPrincipal {
  kind: "user";
  userId: string;
  method: "session" | "api-token";
  /** What it may do: its API token's scopes, or all of them (a session, a token without scopes). */
  scopes: ApiScope[];
  /** The caller's API token's id (the audit log names it); absent for a session. */
  tokenId?: string;
  /** When the caller's API token expires (0: never); tokens it makes expire no later. */
  tokenExpireTime?: number;
  /** SHA-256 of the session cookie, for Logout. */
  sessionHash?: string;
}

export interface RunnerPrincipal {
  kind: "runner";
  runnerId: string;
  replId: string;
  /** When the control credential expires (ms since the epoch). */
  expireTime: number;
}

export type Principal = UserPrincipal | RunnerPrincipal;

export const principalKey = createPrincipalKey<Principal>("devex.core.principal");

export type UserOf = (ctx: HandlerContext) => UserPrincipal;
export type RunnerOf = (ctx: HandlerContext) => RunnerPrincipal;

export const userOf: UserOf = (ctx) => {
  const p = principalOf(ctx, principalKey);
  if (p.kind !== "user") throw permissionDenied("runner credentials cannot call this service");
  return p;
};

export const runnerOf: RunnerOf = (ctx) => {
  const p = principalOf(ctx, principalKey);
  if (p.kind !== "runner") throw permissionDenied("only runners can call this service");
  return p;
};

/** User ids: lower-cased GitHub logins, or the local user's name. Safe in storage keys and paths. */
export const userIdPattern = /^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$/;
