/** How much of the audit log core keeps (DEVEX_AUDIT_RETENTION, DEVEX_AUDIT_MAX_EVENTS, DEVEX_AUDIT_MAX_USER_EVENTS). */
import type { AuditRetention } from "../state/store.js";

export const DEFAULT_AUDIT_RETENTION: AuditRetention = {
  maxAgeMs: 90 * 24 * 3600_000,
  maxEvents: 200_000,
  maxUserEvents: 20_000,
};

/**
 * The embedded store's default cap on events in all: it holds every kept event in memory, about
 * 700 bytes each on the heap (measured: 200,000 typical events took 137 MB of heap, 200 MB of RSS),
 * so 200,000 would cost a one-machine setup ~140 MB; 50,000 cost ~35 MB. Redis keeps 200,000.
 */
export const EMBEDDED_AUDIT_MAX_EVENTS = 50_000;

/** How much to keep: DEVEX_AUDIT_MAX_EVENTS when set, else the default of the store in use. */
export function auditRetention(c: {
  maxAgeMs: number;
  maxEvents?: number;
  maxUserEvents: number;
  embedded: boolean;
}): AuditRetention {
  const fallback = c.embedded ? EMBEDDED_AUDIT_MAX_EVENTS : DEFAULT_AUDIT_RETENTION.maxEvents;
  return { maxAgeMs: c.maxAgeMs, maxEvents: c.maxEvents ?? fallback, maxUserEvents: c.maxUserEvents };
}
