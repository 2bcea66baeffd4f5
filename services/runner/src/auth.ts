/**
 * Who may use this runner: a valid, unexpired token for this repl (aud "runner") on every RPC,
 * WebSocket and preview request, with the scope the service needs; RunnerAdminService takes core's
 * "runner-admin" token instead. grpc.health.v1.Health is open. A preview-only token (a preview
 * link's) is refused by every RPC and the terminal bridge.
 */

import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerAdminService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { Audience, RunnerScope } from "../../../lib/contracts/runner-access.js";
import { createPrincipalKey } from "../../../lib/kit/auth.js";
import { permissionDenied, unauthenticated } from "../../../lib/kit/errors.js";
import { bearerToken, type TokenClaims, type TokenVerifier } from "../../../lib/kit/tokens.js";

export const principalKey = createPrincipalKey<TokenClaims>("devex.runner.principal");

/** The scope each service requires; services not listed (StatusService) need any one of these. */
const scopes: Record<string, RunnerScope> = {
  [FileService.typeName]: RunnerScope.files,
  [TerminalService.typeName]: RunnerScope.terminals,
  [ProcessService.typeName]: RunnerScope.exec,
};
const rpcScopes: string[] = [...Object.values(scopes), RunnerScope.filesRead];

/** FileService's methods that change nothing (their idempotency level says so, and the watch): "files:read" opens them. */
const fileReads = new Set(
  FileService.methods
    .filter((m) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || m.name === "WatchFiles")
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
  /** Authenticates an RPC by its Authorization header. */
  rpc(headers: Headers, method: { service: string; name: string }): TokenClaims;
}

export function createRunnerAuth(verifier: TokenVerifier, replId: string): RunnerAuth {
  const user = (token: string | undefined, scope?: RunnerScope | RunnerScope[]) => {
    if (!token) throw unauthenticated(MISSING_TOKEN);
    const claims = verifier.verify(token, { aud: Audience.runner, repl: replId });
    const anyOf = scope === undefined ? [] : Array.isArray(scope) ? scope : [scope];
    if (anyOf.length && !anyOf.some((s) => claims.scope?.includes(s))) {
      const previewOnly = claims.scope?.length === 1 && claims.scope[0] === RunnerScope.preview;
      throw permissionDenied(
        previewOnly ? PREVIEW_ONLY : `access token lacks the "${anyOf[0]}" scope (its API token may not do this)`,
      );
    }
    return claims;
  };
  return {
    user,
    rpc(headers, method) {
      const token = bearerToken(headers.get("authorization"));
      if (method.service === RunnerAdminService.typeName) {
        if (!token) throw unauthenticated(MISSING_TOKEN);
        return verifier.verify(token, { aud: Audience.runnerAdmin, repl: replId });
      }
      const needed = scopesFor(method);
      if (needed) return user(token, needed);
      const claims = user(token);
      if (!claims.scope?.some((s) => rpcScopes.includes(s))) {
        const previewOnly = claims.scope?.length === 1 && claims.scope[0] === RunnerScope.preview;
        throw permissionDenied(
          previewOnly
            ? PREVIEW_ONLY
            : "this token opens no runner service: its API token may not read files or run commands",
        );
      }
      return claims;
    },
  };
}
