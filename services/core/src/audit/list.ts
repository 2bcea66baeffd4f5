/**
 * Listing the audit log, for AuditService (a user's own events) and AdminService (everyone's):
 * newest first, in pages. The page token is the last event's id, so the next page starts below it
 * whatever was appended meanwhile. A repl filter is applied while reading: a page reads at most
 * MAX_SCANNED events and may then come back short, with a token to go on from where it stopped.
 */
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../../../gen/devex/core/v1/audit_pb.js";
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { AuditStore } from "../state/store.js";
import { toAuditEventProto } from "./event.js";

const DEFAULT_PAGE = 100;
const MAX_SCANNED = 5_000;

export interface AuditListRequest {
  userId?: string;
  replId?: string;
  startTime?: Timestamp;
  endTime?: Timestamp;
  pageSize: number;
  pageToken: string;
}

const encode = (eventId: string) => Buffer.from(eventId).toString("base64url");

function decode(token: string): string | undefined {
  if (!token) return undefined;
  const id = Buffer.from(token, "base64url").toString("utf8");
  if (!/^\d{1,15}-\d{1,15}$/.test(id)) throw invalidArgument("page_token is not one this service gave");
  return id;
}

export async function listAudit(
  store: AuditStore,
  req: AuditListRequest,
): Promise<{ events: AuditEvent[]; nextPageToken: string }> {
  const limit = req.pageSize || DEFAULT_PAGE;
  const startTime = req.startTime && timestampMs(req.startTime);
  const endTime = req.endTime && timestampMs(req.endTime);
  if (startTime !== undefined && endTime !== undefined && endTime < startTime)
    throw invalidArgument("end_time is before start_time");
  let before = decode(req.pageToken);
  const events: AuditEvent[] = [];
  let scanned = 0;
  for (;;) {
    const chunk = req.replId ? Math.min(MAX_SCANNED - scanned, Math.max(limit * 4, 200)) : limit - events.length;
    const page = await store.listAuditEvents({ userId: req.userId, startTime, endTime, before, limit: chunk });
    scanned += page.length;
    for (const e of page) {
      before = e.eventId;
      if (req.replId && e.replId !== req.replId) continue;
      events.push(toAuditEventProto(e));
      if (events.length === limit) return { events, nextPageToken: encode(e.eventId) };
    }
    if (page.length < chunk) return { events, nextPageToken: "" };
    if (scanned >= MAX_SCANNED) return { events, nextPageToken: before ? encode(before) : "" };
  }
}
