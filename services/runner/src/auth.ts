/**
 * Who may use this runner: a valid, unexpired token for this repl (aud "runner") on every RPC,
 * WebSocket and preview request, with the scope the service needs; RunnerAdminService takes core's
 * "runner-admin" token instead. grpc.health.v1.Health is open. A preview-only token (a preview
 * link's) is refused by every RPC and the terminal bridge.
 */

import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerAdminService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { Audience, RunnerScope } from "../../../lib/contracts/runner-access.js";
import { createPrincipalKey, OPEN_SERVICES } from "../../../lib/kit/auth.js";
import { permissionDenied, unauthenticated } from "../../../lib/kit/errors.js";
import { bearerToken, type TokenClaims, type TokenVerifier } from "../../../lib/kit/tokens.js";

export const principalKey = createPrincipalKey<TokenClaims>("devex.runner.principal");

/** The scope each service requires; services not listed (StatusService) need any one of these. */
const scopes: Record<string, RunnerScope> = {
  [FileService.typeName]: RunnerScope.files,
  [TerminalService.typeName]: RunnerScope.terminals,
  [ProcessService.typeName]: RunnerScope.exec,
};
const rpcScopes: RunnerScope[] = [...Object.values(scopes), RunnerScope.filesRead];

/**
 * FileService's methods that change nothing (their idempotency level says so, and the watch): "files:read" opens them.
 * CreateTransferTicket too, for its download tickets: the handler asks for "files" for an upload ticket.
 */
const fileReads = new Set(
  FileService.methods
    .filter(
      (m) =>
        m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
        m.name === "WatchFiles" ||
        m.name === "CreateTransferTicket",
    )
    .map((m) => m.name),
);

/** The scopes of which an RPC needs one. */
function scopesFor(method: { service: string; name: string }): RunnerScope[] | undefined {
  if (method.service === FileService.typeName && fileReads.has(method.name))
    return [RunnerScope.files, RunnerScope.filesRead];
  const scope = scopes[method.service];
  return scope && [scope];
}

/** A preview link's token (scope "preview" only, RunnerAccess.preview_token) opens previews and nothing else. */
const PREVIEW_ONLY =
  "this token only opens previews (a preview link's token): use RunnerAccess.token from core's StartRepl for RPCs";

export const MISSING_TOKEN = "missing access token: send Authorization: Bearer <token> (get one from core's StartRepl)";

export interface RunnerAuth {
  /** Verifies a user token for this repl and checks `scope` (one of them, for a list) when given. */
  user(token: string | undefined, scope?: RunnerScope | RunnerScope[]): TokenClaims;
  /**
   * Who makes an RPC, by its Authorization header: a valid token for this repl (core's admin token
   * for RunnerAdminService). Scopes are checked apart (`authorize`), so that the audit log, between
   * the two, records refusals with who was refused.
   */
  authenticate(headers: Headers, method: { service: string; name: string }): TokenClaims;
  /** Refuses an authenticated RPC its token's scopes do not open. */
  authorize(claims: TokenClaims, method: { service: string; name: string }): void;
  /** Both: authenticates an RPC and checks its scopes. */
  rpc(headers: Headers, method: { service: string; name: string }): TokenClaims;
}

const lacks = (scope: RunnerScope) => `access token lacks the "${scope}" scope (its API token may not do this)`;

export function createRunnerAuth(verifier: TokenVerifier, replId: string): RunnerAuth {
  const checkScope = (claims: TokenClaims, anyOf: readonly RunnerScope[], lacking: string) => {
    if (anyOf.some((s) => claims.scope?.includes(s))) return;
    const previewOnly = claims.scope?.length === 1 && claims.scope[0] === RunnerScope.preview;
    throw permissionDenied(previewOnly ? PREVIEW_ONLY : lacking);
  };
  const user = (token: string | undefined, scope?: RunnerScope | RunnerScope[]) => {
    if (!token) throw unauthenticated(MISSING_TOKEN);
    const claims = verifier.verify(token, { aud: Audience.runner, repl: replId });
    const anyOf = scope === undefined ? [] : Array.isArray(scope) ? scope : [scope];
    if (anyOf.length) checkScope(claims, anyOf, lacks(anyOf[0]));
    return claims;
  };
  const authenticate = (headers: Headers, method: { service: string }) => {
    const token = bearerToken(headers.get("authorization"));
    if (method.service !== RunnerAdminService.typeName) return user(token);
    if (!token) throw unauthenticated(MISSING_TOKEN);
    return verifier.verify(token, { aud: Audience.runnerAdmin, repl: replId });
  };
  const authorize = (claims: TokenClaims, method: { service: string; name: string }) => {
    // RunnerAdminService's callers were authenticated by their own audience, which no user token has.
    if (method.service === RunnerAdminService.typeName) return;
    const needed = scopesFor(method);
    if (needed) checkScope(claims, needed, lacks(needed[0]));
    else
      checkScope(
        claims,
        rpcScopes,
        "this token opens no runner service: its API token may not read files or run commands",
      );
  };
  return {
    user,
    authenticate,
    authorize,
    rpc(headers, method) {
      const claims = authenticate(headers, method);
      authorize(claims, method);
      return claims;
    },
  };
}

/** The scope check after authentication (authInterceptor) and the audit log: `auth.authorize` on every RPC but the open ones. */
export function scopeInterceptor(auth: RunnerAuth, open: ReadonlySet<string> = OPEN_SERVICES): Interceptor {
  return (next) => async (req) => {
    if (open.has(req.service.typeName)) return next(req);
    const claims = req.contextValues.get(principalKey);
    if (!claims) throw unauthenticated(MISSING_TOKEN);
    auth.authorize(claims, { service: req.service.typeName, name: req.method.name });
    return next(req);
  };
}
