/**
 * The Redis store's audit log, on two streams (key docs in redis.ts and services/core/README.md):
 *   audit:all           stream  every user's events (the operator's view)
 *   audit:user:{userId} stream  one user's events, with the same ids as in audit:all
 * One Lua script appends an event to both (XADD *, then XADD with the id it got), trims both by
 * count (MAXLEN) and age (XTRIM MINID), and sets both keys to expire after the age limit, so a user
 * who stops calling leaves nothing behind past the retention. An age limit of 0 means none: no MINID
 * trim and no expiry (the counts still bound the streams). Trimming is exact, not "~": each
 * append removes at most the few entries that fell out, and the bounds are then the configured ones. Listing reads one stream with
 * XREVRANGE: newest first, the time filter and the paging cursor as stream ids (an exclusive "(id").
 */
import type { Redis } from "ioredis";
import type { AuditRecord, AuditRetention, AuditStore, StoredAuditEvent } from "./store.js";

export const AUDIT_ALL_KEY = "audit:all";
export const auditUserKey = (userId: string) => `audit:user:${userId}`;

// KEYS: audit:all, audit:user:{id}. ARGV: max events, max user events, min id ('0': none), ttl ms
// ('0': no age limit, so no expiry either; an expiry set under an earlier limit is removed), fields...
// The user stream takes the id audit:all gave; should it already hold a later one (audit:all was
// deleted and the clock stepped back), it takes its own.
const APPEND_AUDIT = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', unpack(ARGV, 5))
local ok = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[2], id, unpack(ARGV, 5))
if type(ok) == 'table' and ok.err then redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', unpack(ARGV, 5)) end
if ARGV[3] ~= '0' then
  redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
  redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
end
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return id`;

type AppendAudit = (...args: Array<string | number>) => unknown;

const fieldsOf = (e: AuditRecord): string[] => [
  "time",
  String(e.time),
  "userId",
  e.userId,
  "tokenId",
  e.tokenId,
  "clientAddress",
  e.clientAddress,
  "rpc",
  e.rpc,
  "replId",
  e.replId,
  "outcome",
  e.outcome,
  "message",
  e.message,
  "details",
  JSON.stringify(e.details),
];

function toEvent(id: string, flat: string[]): StoredAuditEvent {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]] = flat[i + 1];
  let details: Record<string, string> = {};
  try {
    details = JSON.parse(h.details ?? "{}");
  } catch {
    // written by something else: leave it out
  }
  return {
    eventId: id,
    time: Number(h.time || id.split("-")[0]),
    userId: h.userId ?? "",
    tokenId: h.tokenId ?? "",
    clientAddress: h.clientAddress ?? "",
    rpc: h.rpc ?? "",
    replId: h.replId ?? "",
    outcome: h.outcome ?? "",
    message: h.message ?? "",
    details,
  };
}

/** The audit methods on a connection; `guard` maps Redis failures to Unavailable as the rest of the store does. */
export function redisAuditMethods(redis: Redis, guard: <T>(fn: () => Promise<T>) => Promise<T>): AuditStore {
  redis.defineCommand("APPEND_AUDIT", { numberOfKeys: 2, lua: APPEND_AUDIT });
  return {
    appendAuditEvents: (events, r: AuditRetention) =>
      guard(async () => {
        if (!events.length) return;
        const ageLimited = r.maxAgeMs > 0;
        const minId = ageLimited ? `${Math.max(0, Date.now() - r.maxAgeMs)}-0` : "0";
        // MULTI keeps a batch together and in order; EVALSHA inside it is loaded by ioredis first.
        const m = redis.multi();
        for (const e of events) {
          const append = (m as unknown as { APPEND_AUDIT: AppendAudit }).APPEND_AUDIT.bind(m);
          append(
            AUDIT_ALL_KEY,
            auditUserKey(e.userId),
            r.maxEvents,
            r.maxUserEvents,
            minId,
            ageLimited ? r.maxAgeMs : 0,
            ...fieldsOf(e),
          );
        }
        const results = (await m.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
      }),
    listAuditEvents: (q) =>
      guard(async () => {
        const key = q.userId === undefined ? AUDIT_ALL_KEY : auditUserKey(q.userId);
        let end = "+";
        if (q.endTime !== undefined) end = `(${q.endTime}-0`;
        if (q.before && (q.endTime === undefined || beforeEnd(q.before, q.endTime))) end = `(${q.before}`;
        const start = q.startTime !== undefined ? `${q.startTime}-0` : "-";
        const rows = await redis.xrevrange(key, end, start, "COUNT", q.limit);
        return rows.map(([id, flat]) => toEvent(id, flat));
      }),
  };
}

/** Whether the cursor id lies before endTime (then it is the tighter bound). */
const beforeEnd = (id: string, endTime: number) => Number(id.split("-")[0]) < endTime;
