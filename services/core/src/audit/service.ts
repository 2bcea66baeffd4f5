/** AuditService: a user reads their own audit events (an API token needs the admin scope, auth/scopes.ts). */
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuditService } from "../../../../gen/devex/core/v1/audit_pb.js";
import type { UserOf } from "../auth/principal.js";
import type { AuditStore } from "../state/store.js";
import { listAudit } from "./list.js";
import type { AuditRecorder } from "./recorder.js";

export function createAuditService(
  store: AuditStore,
  recorder: AuditRecorder,
  userOf: UserOf,
): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req, ctx) {
      const { userId } = userOf(ctx);
      // What this core recorded so far is in the log before it is read: a caller sees its own last call.
      await recorder.flushed();
      return listAudit(store, { ...req, userId });
    },
  };
}
