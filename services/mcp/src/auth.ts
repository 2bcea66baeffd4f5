/**
 * Agents authenticate with a Devex API token. The MCP server does not judge tokens itself: it asks
 * core who the token belongs to and what it may do (AuthService.GetCurrentUser) and caches the answer
 * briefly, keyed by the token's hash so that no token is kept in the clear.
 */
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CoreClients } from "../../../lib/client/clients.js";
import { type ApiScope, isApiScope } from "../../../lib/contracts/api-scopes.js";
import { unauthenticated, unavailable } from "../../../lib/kit/errors.js";
import type { Caller } from "./tools/agent-tools.js";

export type Authenticate = (token: string) => Promise<Caller>;

export function createCoreAuthenticator(coreFor: (token: string) => CoreClients, ttlMs = 30_000): Authenticate {
  const cache = new Map<string, { userId: string; scopes: ApiScope[]; until: number }>();
  return async (token) => {
    const key = createHash("sha256").update(token).digest("hex");
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return { token, userId: hit.userId, scopes: hit.scopes };
    try {
      const { user, scopes: granted } = await coreFor(token).auth.getCurrentUser({});
      if (!user?.userId) throw unauthenticated("invalid API token");
      // Core sends what the caller may do, all scopes for a token without any: trusted as it is.
      const scopes = granted.filter(isApiScope);
      if (cache.size > 10_000) cache.clear();
      cache.set(key, { userId: user.userId, scopes, until: Date.now() + ttlMs });
      return { token, userId: user.userId, scopes };
    } catch (e) {
      cache.delete(key);
      if (e instanceof ConnectError && (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied)) {
        throw unauthenticated("invalid or expired API token");
      }
      if (e instanceof ConnectError) throw unavailable("Devex core is unavailable; try again shortly");
      throw e;
    }
  };
}
