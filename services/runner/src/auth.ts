/**
 * Who may use this runner: a valid, unexpired token for this repl (aud "runner") on every RPC,
 * WebSocket and preview request, with the scope the service needs; RunnerAdminService takes core's
 * "runner-admin" token instead. grpc.health.v1.Health is open. A preview-only token (a preview
 * link's) is refused by every RPC and the terminal bridge.
 */

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
const rpcScopes: string[] = Object.values(scopes);

/** A preview link's token (scope "preview" only, RunnerAccess.preview_token) opens previews and nothing else. */
const PREVIEW_ONLY =
  "this token only opens previews (a preview link's token): use RunnerAccess.token from core's StartRepl for RPCs";

export const MISSING_TOKEN = "missing access token: send Authorization: Bearer <token> (get one from core's StartRepl)";

export interface RunnerAuth {
  /** Verifies a user token for this repl and checks `scope` when given. */
  user(token: string | undefined, scope?: RunnerScope): TokenClaims;
  /** Authenticates an RPC by its Authorization header. */
  rpc(headers: Headers, method: { service: string; name: string }): TokenClaims;
}

export function createRunnerAuth(verifier: TokenVerifier, replId: string): RunnerAuth {
  const user = (token: string | undefined, scope?: RunnerScope) => {
    if (!token) throw unauthenticated(MISSING_TOKEN);
    const claims = verifier.verify(token, { aud: Audience.runner, repl: replId });
    if (scope && !claims.scope?.includes(scope)) {
      const previewOnly = claims.scope?.length === 1 && claims.scope[0] === RunnerScope.preview;
      throw permissionDenied(previewOnly ? PREVIEW_ONLY : `access token lacks the "${scope}" scope`);
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
      const scope = scopes[method.service];
      if (scope) return user(token, scope);
      const claims = user(token);
      if (!claims.scope?.some((s) => rpcScopes.includes(s))) throw permissionDenied(PREVIEW_ONLY);
      return claims;
    },
  };
}
