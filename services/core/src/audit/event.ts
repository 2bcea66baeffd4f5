/**
 * What goes into an audit event, and what never does: the credential is named by its id or kind,
 * never its secret; a failure by its Connect code and, for failures Devex expected, the message it
 * sent the caller (never a backend's text: lib/kit/outcome.ts).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema } from "../../../../gen/devex/core/v1/audit_pb.js";
import { SESSION_TOKEN_ID } from "../../../../lib/contracts/audit.js";
import type { UserPrincipal } from "../auth/principal.js";
import type { StoredAuditEvent } from "../state/store.js";

/** The token id of events made without an API token: how the caller was known. */
export const Credential = {
  /** A browser session cookie. */
  session: SESSION_TOKEN_ID,
  /** A one-time login link. */
  link: "link",
  /** A GitHub sign-in. */
  github: "github",
  /** A device login's token request (the device code). */
  device: "device",
  /** Core's admin socket (the operator's CLI). */
  operator: "operator",
  /** Git inside a repl, with its GetGitCredential token (repl/git-route.ts). */
  git: "git",
} as const;

/** The caller's token id for the log: its API token's id, or "session" (a session has none). */
export const credentialOf = (p: UserPrincipal): string => p.tokenId ?? Credential.session;

export function toAuditEventProto(e: StoredAuditEvent): AuditEvent {
  return create(AuditEventSchema, {
    eventId: e.eventId,
    time: timestampFromMs(e.time),
    userId: e.userId,
    tokenId: e.tokenId,
    clientAddress: e.clientAddress,
    rpc: e.rpc,
    replId: e.replId,
    outcome: e.outcome,
    message: e.message,
    details: e.details,
  });
}
