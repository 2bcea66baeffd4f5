/** Audit events of core's HTTP routes that are not RPCs: sign-ins, sign-outs, device logins' tokens, preview sign-ins. */
import { clientAddress } from "../../../../lib/kit/client-address.js";
import { OK_OUTCOME } from "../../../../lib/kit/outcome.js";
import type { HttpRequest } from "../../../../lib/kit/server.js";
import type { AuditRecorder } from "./recorder.js";

/** What a route's event says: "auth/login", "auth/logout", "auth/device-token", "auth/preview", "git/push". */
export interface RouteEvent {
  rpc: `auth/${string}` | `git/${string}`;
  userId: string;
  /** The repl it is about, if any. */
  replId?: string;
  /** How the caller was known (event.ts Credential). */
  tokenId: string;
  details?: Record<string, string>;
}

/** Where routes record to: the recorder, and whether X-Forwarded-For is trusted (DEVEX_TRUST_PROXY). */
export interface RouteAudit {
  recorder: AuditRecorder;
  trustProxy: boolean;
}

export function recordRoute(audit: RouteAudit | undefined, req: HttpRequest, e: RouteEvent): void {
  audit?.recorder.record({
    time: Date.now(),
    userId: e.userId,
    tokenId: e.tokenId,
    clientAddress: clientAddress(req, audit.trustProxy),
    rpc: e.rpc,
    replId: e.replId ?? "",
    outcome: OK_OUTCOME,
    message: "",
    details: e.details ?? {},
  });
}
