/**
 * The open MCP sessions of the HTTP endpoint, each bound to the user who opened it. Each keeps its
 * recent events for resumption (memory), so a user has at most `perUser`; past that their least
 * recently used idle session is closed. Sessions idle for `idleMs` are closed too. A session with a
 * call in flight is never closed by either: that would abort the call.
 */
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallsInFlight } from "./calls-in-flight.js";

export interface Session {
  transport: StreamableHTTPServerTransport;
  userId: string;
  lastUse: number;
  calls: CallsInFlight;
}

export class McpSessions {
  private readonly open = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly perUser: number,
    idleMs: number,
  ) {
    this.sweeper = setInterval(() => {
      const cutoff = Date.now() - idleMs;
      for (const [id, s] of this.open) if (s.lastUse < cutoff && s.calls.count === 0) void this.close(id);
    }, 60_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.open.size;
  }

  /** The user's session by id (marked as used), or undefined for an unknown id or another user's. */
  use(id: string, userId: string): Session | undefined {
    const s = this.open.get(id);
    if (!s || s.userId !== userId) return undefined;
    s.lastUse = Date.now();
    return s;
  }

  add(id: string, session: Omit<Session, "lastUse">): void {
    this.open.set(id, { ...session, lastUse: Date.now() });
  }

  forget(id: string): void {
    this.open.delete(id);
  }

  /** Room for one more session of the user's; false if every one they have has calls running. */
  makeRoom(userId: string): boolean {
    const own = [...this.open].filter(([, s]) => s.userId === userId).sort(([, a], [, b]) => a.lastUse - b.lastUse);
    let excess = own.length + 1 - this.perUser;
    for (const [id, s] of own) {
      if (excess <= 0) break;
      if (s.calls.count > 0) continue;
      void this.close(id);
      excess--;
    }
    return excess <= 0;
  }

  async close(id: string): Promise<void> {
    const s = this.open.get(id);
    this.open.delete(id);
    await s?.transport.close().catch(() => {});
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.open.keys()].map((id) => this.close(id)));
  }
}
