/**
 * Appends audit events without holding up the calls they record: `record` queues the event and
 * returns; one writer at a time takes everything queued and appends it in one store call, so events
 * land in the order they were recorded and a burst costs one round trip. A failed append is logged
 * (a warning, with how many events were lost) and the call it records is unaffected. While the
 * store is unreachable the queue is bounded: past MAX_QUEUED, new events are counted and dropped.
 */
import type { Logger } from "../../../../lib/kit/log.js";
import type { AuditRecord, AuditRetention, AuditStore } from "../state/store.js";

const MAX_QUEUED = 10_000;
/** Most events per store call. */
const BATCH = 500;

export interface AuditRecorder {
  /** Queues the event; never throws, never waits. */
  record(event: AuditRecord): void;
  /** Resolves once every event recorded so far was appended (or given up on). */
  flushed(): Promise<void>;
}

export function createAuditRecorder(store: AuditStore, retention: AuditRetention, log: Logger): AuditRecorder {
  const queue: AuditRecord[] = [];
  let writing: Promise<void> | undefined;
  let dropped = 0;

  const drain = async () => {
    while (queue.length) {
      const batch = queue.splice(0, BATCH);
      try {
        await store.appendAuditEvents(batch, retention);
      } catch (err) {
        log.warn({ err, lost: batch.length }, "could not append to the audit log");
      }
    }
    writing = undefined;
  };

  return {
    record(event) {
      if (queue.length >= MAX_QUEUED) {
        if (dropped++ % 1000 === 0) log.warn({ dropped }, "the audit log is not keeping up: dropping events");
        return;
      }
      queue.push(event);
      writing ??= drain();
    },
    async flushed() {
      while (writing) await writing;
    },
  };
}
