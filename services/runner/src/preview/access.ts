/**
 * Who may open a preview: the rules core sent (sharing.ts) applied to the request's token. Public:
 * anyone. Otherwise a valid preview token for this repl: the owner's (no "link" claim) always; a
 * preview link's only for its own port, while that port is shared by link, and unless revoked.
 */
import { PreviewAccess } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { RunnerScope } from "../../../../lib/contracts/runner-access.js";
import { DomainError, permissionDenied, unauthenticated } from "../../../../lib/kit/errors.js";
import type { TokenClaims } from "../../../../lib/kit/tokens.js";
import type { RunnerAuth } from "../auth.js";
import { accessOf, type PreviewRules } from "./sharing.js";

/** Why a request was refused, so a browser can be sent to sign in where that helps. */
export class PreviewRefused extends DomainError {
  constructor(
    err: DomainError,
    /** True when signing in as the owner would open it (no token, or the owner's expired). */
    readonly signInHelps: boolean,
  ) {
    super(err.kind, err.message, { cause: err });
  }
  /** The page asked for, below the port (for the sign-in's way back). */
  path?: string;
  /** Set-Cookie that removes a preview cookie which no longer opens anything. */
  clearCookie?: string;
}

const LINK_GONE = "this preview link has expired or was revoked: ask the repl's owner for a new one";

/** The claims of a token without checking it: only to word a refusal (was it a preview link?). */
function looksLikeLink(token: string): boolean {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    return typeof claims?.link === "number";
  } catch {
    return false;
  }
}

/** The token's claims when it let the request in; undefined on a public port (no token needed). */
export function checkPreviewAccess(
  auth: RunnerAuth,
  rules: PreviewRules,
  port: number,
  token: string | undefined,
): TokenClaims | undefined {
  const access = accessOf(rules, port);
  if (access === PreviewAccess.PUBLIC) return undefined;
  if (!token) {
    throw new PreviewRefused(
      unauthenticated("this preview is private: open it signed in as the repl's owner, or with a preview link"),
      true,
    );
  }
  let claims: ReturnType<RunnerAuth["user"]>;
  try {
    claims = auth.user(token, RunnerScope.preview);
  } catch (e) {
    const link = looksLikeLink(token);
    if (link && e instanceof DomainError && e.kind === "unauthenticated")
      throw new PreviewRefused(unauthenticated(LINK_GONE), false);
    throw new PreviewRefused(e as DomainError, !link);
  }
  if (claims.link === undefined) return claims;
  if (claims.port !== port) throw new PreviewRefused(permissionDenied("this preview link opens another port"), false);
  if (access !== PreviewAccess.LINK || claims.link < rules.linkEpoch) {
    throw new PreviewRefused(permissionDenied(LINK_GONE), false);
  }
  return claims;
}
