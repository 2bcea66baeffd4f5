/**
 * Which API scopes (lib/contracts/api-scopes.ts) open each of core's user RPCs: one of the listed.
 * Checked for every call after authentication (authenticate.ts). A method with no rule here is open
 * only to a principal with every scope (a browser session, a token without scopes): a new RPC is
 * closed to scoped tokens until it is given its rule.
 */
import { AuditService } from "../../../../gen/devex/core/v1/audit_pb.js";
import { AuthService } from "../../../../gen/devex/core/v1/auth_pb.js";
import { CheckpointService } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplService } from "../../../../gen/devex/core/v1/repl_pb.js";
import { ALL_API_SCOPES, ApiScope } from "../../../../lib/contracts/api-scopes.js";
import { permissionDenied } from "../../../../lib/kit/errors.js";

const ANY = ALL_API_SCOPES;
const { replsRead, replsWrite, filesRead, filesWrite, exec, admin } = ApiScope;

export const scopeRules: Record<string, readonly ApiScope[]> = {
  [`${AuthService.typeName}/GetCurrentUser`]: ANY,
  [`${AuthService.typeName}/CreateApiToken`]: [admin],
  [`${AuthService.typeName}/ListApiTokens`]: [admin],
  [`${AuthService.typeName}/RevokeApiToken`]: [admin],
  [`${AuthService.typeName}/Logout`]: ANY,
  // Both take a browser session anyway (service.ts).
  [`${AuthService.typeName}/GetDeviceLogin`]: ANY,
  [`${AuthService.typeName}/ApproveDeviceLogin`]: ANY,
  [`${ReplService.typeName}/ListTemplates`]: [replsRead],
  [`${ReplService.typeName}/ListRepls`]: [replsRead],
  [`${ReplService.typeName}/GetRepl`]: [replsRead],
  [`${ReplService.typeName}/WatchRepl`]: [replsRead],
  [`${ReplService.typeName}/CreateRepl`]: [replsWrite],
  [`${ReplService.typeName}/ListGitHubRepositories`]: [replsRead],
  // Reading files or running commands needs a running runner: any runner scope may start one.
  [`${ReplService.typeName}/StartRepl`]: [replsWrite, filesRead, filesWrite, exec],
  [`${ReplService.typeName}/StopRepl`]: [replsWrite],
  [`${ReplService.typeName}/DeleteRepl`]: [replsWrite],
  [`${ReplService.typeName}/SetEgressPolicy`]: [replsWrite],
  // The log names the user's tokens, repls and addresses: account administration, as tokens are.
  [`${AuditService.typeName}/ListAuditEvents`]: [admin],
  [`${ReplService.typeName}/SetPreviewVisibility`]: [replsWrite],
  [`${ReplService.typeName}/CreatePreviewLink`]: [replsWrite],
  [`${ReplService.typeName}/ListEnvironmentVariables`]: [replsRead],
  // A variable can run code in every command (BASH_ENV, LD_PRELOAD, NODE_OPTIONS): exec's to change.
  [`${ReplService.typeName}/SetEnvironmentVariable`]: [exec],
  [`${ReplService.typeName}/DeleteEnvironmentVariable`]: [exec],
  // A template carries commands that run by themselves (its setup command, on every new repl's first
  // start): making one is running code, as changing a variable is.
  [`${ReplService.typeName}/SaveTemplate`]: [exec],
  [`${ReplService.typeName}/DeleteTemplate`]: [replsWrite],
  [`${CheckpointService.typeName}/CreateCheckpoint`]: [replsWrite],
  [`${CheckpointService.typeName}/ListCheckpoints`]: [replsRead],
  [`${CheckpointService.typeName}/DeleteCheckpoint`]: [replsWrite],
  // With patches it shows file contents: a reading of files.
  [`${CheckpointService.typeName}/DiffCheckpoints`]: [filesRead, filesWrite],
  // It rewrites every file of the repl.
  [`${CheckpointService.typeName}/RestoreCheckpoint`]: [filesWrite],
  [`${CheckpointService.typeName}/ForkRepl`]: [replsWrite],
};

/** Refuses a call the principal's scopes do not open, saying which scope it needs. */
export function checkScopes(scopes: readonly ApiScope[], method: { service: string; name: string }): void {
  if (scopes.length === ANY.length) return;
  const needed = scopeRules[`${method.service}/${method.name}`] ?? ANY;
  if (needed.some((s) => scopes.includes(s))) return;
  const need = needed.length === ANY.length ? "a token without scopes" : `the scope ${needed.join(" or ")}`;
  throw permissionDenied(
    `this API token may not call ${method.name}: it needs ${need} (it has ${scopes.join(", ") || "none"}); create one that may on the API tokens page`,
  );
}
