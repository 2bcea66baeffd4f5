/**
 * The embedded store's audit log: `<dir>/audit.jsonl`, one event per line, appended (never
 * rewritten per call, unlike state.json, which is rewritten whole on every change: the log grows
 * with every call and would make each one rewrite megabytes). The retained events are also held in
 * memory, in order, for listing. Retention trims memory as events are appended; the file is
 * rewritten from memory (temp file + rename) at open and whenever it holds many more lines than are
 * kept, so it stays within about 1.5 × the retained events (mode 0600 either way; a rewrite is
 * written in chunks, not built as one string). An age limit of 0 means none. A torn last line (a
 * crash mid-append) is skipped at open. Ids are "<ms>-<seq>" like Redis stream ids, increasing even
 * if the clock steps back. Every kept event is in memory, about 700 bytes each (audit/retention.ts).
 */
import { appendFile, chmod, readFile } from "node:fs/promises";
import { join } from "node:path";
import { unavailable } from "../../../../lib/kit/errors.js";
import { replaceFile } from "../../../../lib/kit/replace-file.js";
import type { AuditRecord, AuditRetention, AuditStore, StoredAuditEvent } from "./store.js";

/** The log names users, tokens and addresses: only core's user reads it, whether appended to or rewritten. */
const FILE_MODE = 0o600;
/** Events per write when the file is rewritten, so the whole file is never one string. */
const REWRITE_CHUNK = 1000;

/** Past its retention cap a user's (or the whole log's) events are trimmed only after this much slack, so trimming is occasional. */
const SLACK = 0.1;

interface Id {
  ms: number;
  seq: number;
}

const parseId = (id: string): Id | undefined => {
  const m = /^(\d{1,15})-(\d{1,15})$/.exec(id);
  return m ? { ms: Number(m[1]), seq: Number(m[2]) } : undefined;
};
const before = (a: Id, b: Id) => a.ms < b.ms || (a.ms === b.ms && a.seq < b.seq);

type Entry = StoredAuditEvent & { id: Id };

export interface EmbeddedAuditLog extends AuditStore {
  close(): Promise<void>;
}

export async function openEmbeddedAuditLog(dir: string): Promise<EmbeddedAuditLog> {
  const file = join(dir, "audit.jsonl");
  const events: Entry[] = [];
  let linesInFile = 0;
  try {
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      if (!line) continue;
      linesInFile++;
      try {
        const e = JSON.parse(line) as StoredAuditEvent;
        const id = parseId(e.eventId);
        if (id && (!events.length || before(events[events.length - 1].id, id))) events.push({ ...e, id });
      } catch {
        // a torn line from a crash mid-append
      }
    }
    // A file an earlier version compacted with the umask's mode becomes private again.
    await chmod(file, FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const perUser = new Map<string, number>();
  for (const e of events) perUser.set(e.userId, (perUser.get(e.userId) ?? 0) + 1);
  let last: Id = events.at(-1)?.id ?? { ms: 0, seq: 0 };
  let writing: Promise<void> = Promise.resolve();

  const nextId = (): Id => {
    const now = Date.now();
    last = now > last.ms ? { ms: now, seq: 0 } : { ms: last.ms, seq: last.seq + 1 };
    return last;
  };
  const dropWhere = (drop: (e: Entry, i: number) => boolean) => {
    let kept = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (drop(e, i)) perUser.set(e.userId, (perUser.get(e.userId) ?? 1) - 1);
      else events[kept++] = e;
    }
    events.length = kept;
    for (const [u, n] of perUser) if (n <= 0) perUser.delete(u);
  };
  const trim = (r: AuditRetention) => {
    const oldest = Date.now() - r.maxAgeMs;
    if (r.maxAgeMs > 0 && events.length && events[0].id.ms < oldest) dropWhere((e) => e.id.ms < oldest);
    if (events.length > r.maxEvents * (1 + SLACK)) {
      const extra = events.length - r.maxEvents;
      dropWhere((_e, i) => i < extra);
    }
    for (const [user, n] of perUser) {
      if (n <= r.maxUserEvents * (1 + SLACK)) continue;
      let extra = n - r.maxUserEvents;
      dropWhere((e) => e.userId === user && extra-- > 0);
    }
  };
  // Writes are chained, so lines land in the order events were appended.
  const write = (work: () => Promise<void>): Promise<void> => {
    const mine = writing.then(work).catch((e) => {
      throw unavailable("the state store cannot write its audit log", e);
    });
    writing = mine.catch(() => {});
    return mine;
  };
  const serialize = (e: Entry) => {
    const { id: _id, ...rest } = e;
    return JSON.stringify(rest);
  };
  // The events as they are now (appends after this go to the file after it), written in chunks.
  const rewrite = () => {
    linesInFile = events.length;
    const kept = events.slice();
    function* chunks() {
      for (let i = 0; i < kept.length; i += REWRITE_CHUNK)
        yield kept
          .slice(i, i + REWRITE_CHUNK)
          .map((e) => `${serialize(e)}\n`)
          .join("");
    }
    return write(() => replaceFile(file, chunks(), { mode: FILE_MODE }));
  };
  if (linesInFile !== events.length) await rewrite();

  return {
    async appendAuditEvents(records: readonly AuditRecord[], retention: AuditRetention) {
      if (!records.length) return;
      const added = records.map((r) => {
        const id = nextId();
        const e: Entry = { ...r, details: { ...r.details }, eventId: `${id.ms}-${id.seq}`, id };
        events.push(e);
        perUser.set(r.userId, (perUser.get(r.userId) ?? 0) + 1);
        return e;
      });
      trim(retention);
      if (linesInFile + added.length > events.length * 1.5 + 1000) return rewrite();
      linesInFile += added.length;
      const text = added.map((e) => `${serialize(e)}\n`).join("");
      return write(() => appendFile(file, text, { mode: FILE_MODE }));
    },
    async listAuditEvents(q) {
      // The newest event the query may return: before the cursor and before endTime.
      let limit: Id | undefined = q.before ? parseId(q.before) : undefined;
      if (q.endTime !== undefined && (!limit || q.endTime <= limit.ms)) limit = { ms: q.endTime, seq: 0 };
      const out: StoredAuditEvent[] = [];
      for (let i = limit ? lastBefore(events, limit) : events.length - 1; i >= 0 && out.length < q.limit; i--) {
        const e = events[i];
        if (q.startTime !== undefined && e.id.ms < q.startTime) break;
        if (q.userId !== undefined && e.userId !== q.userId) continue;
        const { id: _id, ...stored } = e;
        out.push({ ...stored, details: { ...stored.details } });
      }
      return out;
    },
    async close() {
      await writing;
    },
  };
}

/** The index of the last event whose id is below `limit` (-1 if none), by binary search. */
function lastBefore(events: readonly Entry[], limit: Id): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(events[mid].id, limit)) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
