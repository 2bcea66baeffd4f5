/**
 * The events of one MCP session's SSE streams, kept so that a client whose connection drops can
 * reconnect with Last-Event-ID and get the rest of the answer (resumable streams). The SDK's
 * transport writes through it: a priming event first on each stream, then every message.
 *
 * Bounded, since a client may never come back: each stream keeps its newest `eventsPerStream`
 * events; the session keeps at most `bytesPerSession` of them (oldest streams go first) and
 * `streamsPerSession` streams (answered ones go first); a stream whose answer was sent is kept
 * `answeredKeepMs` after it. A stream still waiting for its answer is kept however quiet it is (a
 * command may run an hour without a word), within those bounds. A resume from an event that is no
 * longer kept is refused (the SDK answers 400), never replayed with a gap.
 */
import type { EventId, EventStore, StreamId } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
} from "@modelcontextprotocol/sdk/types.js";

export interface EventStoreLimits {
  eventsPerStream: number;
  /** Measured as JSON characters. */
  bytesPerSession: number;
  streamsPerSession: number;
  answeredKeepMs: number;
}

export const defaultEventStoreLimits: EventStoreLimits = {
  eventsPerStream: 2_000,
  bytesPerSession: 4 * 1024 * 1024,
  streamsPerSession: 1_000,
  answeredKeepMs: 60_000,
};

/** Answered streams are looked for at most this often (each look walks every stream). */
const PRUNE_EVERY_MS = 1_000;

interface Stored {
  seq: number;
  message: JSONRPCMessage;
  bytes: number;
}

interface Stream {
  events: Stored[];
  /** Sequence numbers up to this one were dropped: a resume from before it would have a gap. */
  droppedThrough: number;
  lastEventAt: number;
  answeredAt: number | undefined;
}

export class SessionEventStore implements EventStore {
  private readonly streams = new Map<StreamId, Stream>();
  private seq = 0;
  private bytes = 0;
  private prunedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly limits: EventStoreLimits = defaultEventStoreLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    this.prune();
    let stream = this.streams.get(streamId);
    if (!stream) {
      stream = { events: [], droppedThrough: 0, lastEventAt: 0, answeredAt: undefined };
      this.streams.set(streamId, stream);
      if (this.streams.size > this.limits.streamsPerSession) this.dropOneStream(streamId);
    }
    const stored = { seq: ++this.seq, message, bytes: JSON.stringify(message).length };
    stream.events.push(stored);
    stream.lastEventAt = this.now();
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) stream.answeredAt = stream.lastEventAt;
    this.bytes += stored.bytes;
    if (stream.events.length > this.limits.eventsPerStream) this.dropOldest(stream);
    while (this.bytes > this.limits.bytesPerSession && this.dropOldestAnywhere());
    return eventId(streamId, stored.seq);
  }

  async getStreamIdForEventId(id: EventId): Promise<StreamId | undefined> {
    return this.find(id)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const found = this.find(lastEventId);
    if (!found) throw new Error(`event ${lastEventId} is not kept`);
    for (const e of found.stream.events) {
      // Priming events (empty messages) only give the client a cursor; they carry nothing.
      if (e.seq > found.seq && Object.keys(e.message).length > 0) await send(eventId(found.streamId, e.seq), e.message);
    }
    return found.streamId;
  }

  /** Events kept, for tests and metrics. */
  get size(): { streams: number; events: number; bytes: number } {
    let events = 0;
    for (const s of this.streams.values()) events += s.events.length;
    return { streams: this.streams.size, events, bytes: this.bytes };
  }

  /** The stream an event id names, if the stream is kept and nothing after the event was dropped. */
  private find(id: EventId): { streamId: StreamId; stream: Stream; seq: number } | undefined {
    const cut = id.lastIndexOf("_");
    if (cut <= 0) return undefined;
    const streamId = id.slice(0, cut);
    if (!/^[1-9]\d{0,15}$/.test(id.slice(cut + 1))) return undefined;
    const seq = Number(id.slice(cut + 1));
    const stream = this.streams.get(streamId);
    if (!stream || !Number.isSafeInteger(seq) || seq < stream.droppedThrough || seq > this.seq) return undefined;
    if (seq > stream.droppedThrough && !stream.events.some((e) => e.seq === seq)) return undefined;
    return { streamId, stream, seq };
  }

  private dropOldest(stream: Stream) {
    const dropped = stream.events.shift();
    if (!dropped) return;
    stream.droppedThrough = dropped.seq;
    this.bytes -= dropped.bytes;
  }

  /** Drops the oldest event of the stream that has been quiet longest; false when nothing is left. */
  private dropOldestAnywhere(): boolean {
    let oldest: Stream | undefined;
    for (const s of this.streams.values())
      if (s.events.length && (!oldest || s.lastEventAt < oldest.lastEventAt)) oldest = s;
    if (!oldest) return false;
    this.dropOldest(oldest);
    return true;
  }

  private prune() {
    const now = this.now();
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    for (const [id, s] of this.streams) {
      if (s.answeredAt !== undefined && s.answeredAt + this.limits.answeredKeepMs <= now) this.deleteStream(id, s);
    }
  }

  /** Over the stream limit: the oldest answered stream goes, else the quietest other than `keep`. */
  private dropOneStream(keep: StreamId) {
    let victim: [StreamId, Stream] | undefined;
    for (const entry of this.streams) {
      const [id, s] = entry;
      if (id === keep) continue;
      const better =
        !victim ||
        (s.answeredAt !== undefined && victim[1].answeredAt === undefined) ||
        ((s.answeredAt === undefined) === (victim[1].answeredAt === undefined) &&
          s.lastEventAt < victim[1].lastEventAt);
      if (better) victim = entry;
    }
    if (victim) this.deleteStream(...victim);
  }

  private deleteStream(id: StreamId, s: Stream) {
    for (const e of s.events) this.bytes -= e.bytes;
    this.streams.delete(id);
  }
}

const eventId = (streamId: StreamId, seq: number): EventId => `${streamId}_${seq}`;
