/** `devex audit`: the signed-in user's audit events, newest first (AuditService.ListAuditEvents). */

import { auditJsonLines, auditTable, collectAuditEvents, sinceTime } from "../../lib/client/audit-listing.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { UsageError } from "./cli-error.js";

export interface AuditOptions {
  since?: string;
  limit?: string;
  repl?: string;
  json: boolean;
}

export async function listAudit(core: CoreClients, o: AuditOptions, out: NodeJS.WritableStream): Promise<void> {
  const startTime = o.since === undefined ? undefined : sinceTime(o.since);
  if (o.since !== undefined && !startTime)
    throw new UsageError(`--since "${o.since}": give a duration (1h, 7d) or a date`);
  const limit = o.limit === undefined ? 50 : Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
    throw new UsageError("--limit must be a whole number from 1");
  const events = await collectAuditEvents(limit, (pageSize, pageToken) =>
    core.audit.listAuditEvents({ startTime, pageSize, pageToken, replId: o.repl ?? "" }),
  );
  if (o.json) {
    out.write(auditJsonLines(events));
    return;
  }
  if (!events.length) {
    out.write("no audit events\n");
    return;
  }
  out.write(auditTable(events, false));
}
