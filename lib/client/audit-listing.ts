/**
 * Listing audit events from a command line, the same for `devex audit` (a user's own) and core's
 * operator CLI (everyone's): `--since` as a duration back from now or a date, paging until `limit`
 * events, and the events as table rows or JSON lines.
 */
import { toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema } from "../../gen/devex/core/v1/audit_pb.js";
import { parseDuration } from "../kit/config.js";

/** The start of `--since`: "1h", "30m", "7d" back from `now`, or a date ("2026-05-01", ISO 8601). */
export function sinceTime(text: string, now = Date.now()): Timestamp | undefined {
  const back = parseDuration(text);
  if (back !== undefined && /[a-z]$/.test(text.trim())) return timestampFromMs(now - back);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : timestampFromMs(date);
}

/** A page of events and the token of the next; what both AuditService and AdminService answer. */
type Page = { events: AuditEvent[]; nextPageToken: string };

/** Up to `limit` events, newest first, asking for pages of at most 500. */
export async function collectAuditEvents(limit: number, page: (pageSize: number, pageToken: string) => Promise<Page>) {
  const events: AuditEvent[] = [];
  let token = "";
  do {
    const res = await page(Math.min(500, limit - events.length), token);
    events.push(...res.events);
    token = res.nextPageToken;
  } while (token && events.length < limit);
  return events.slice(0, limit);
}

const short = (rpc: string) => rpc.replace(/^devex\.[a-z]+\.v1\./, "");

/**
 * Characters a terminal acts on or that reorder or break a line: C0 and C1 controls (ESC starts a
 * terminal escape sequence, CR overwrites the line), DEL, line and paragraph separators, and the
 * bidirectional formatting marks that can make a path read as another.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A value fit for a terminal: those characters as JSON writes them ("\u001b"). Events hold what
 * users and their runners sent (paths, names, messages), so a table never prints them raw.
 */
export const printable = (text: string): string =>
  text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** A table (plain left-aligned columns): time, (user,) credential, client, call, repl, outcome, details. */
export function auditTable(events: readonly AuditEvent[], withUser: boolean): string {
  const header = ["TIME", ...(withUser ? ["USER"] : []), "TOKEN", "CLIENT", "CALL", "REPL", "OUTCOME", "DETAILS"];
  const rows = events.map((e) => row(e, withUser).map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return `${[header, ...rows].map(line).join("\n")}\n`;
}

/** An event's cells, as it holds them. */
function row(e: AuditEvent, withUser: boolean): string[] {
  return [
    e.time
      ? timestampDate(e.time)
          .toISOString()
          .replace(/\.\d+Z$/, "Z")
      : "",
    ...(withUser ? [e.userId] : []),
    e.tokenId,
    e.clientAddress,
    short(e.rpc),
    e.replId || "-",
    e.outcome,
    [
      ...Object.entries(e.details)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`),
      ...(e.message ? [JSON.stringify(e.message)] : []),
    ].join(" "),
  ];
}

/** One JSON object per line, in the proto's JSON form. */
export const auditJsonLines = (events: readonly AuditEvent[]) =>
  events.map((e) => `${JSON.stringify(toJson(AuditEventSchema, e))}\n`).join("");
