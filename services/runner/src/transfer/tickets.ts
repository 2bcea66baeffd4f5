/**
 * Single-use tickets for the runner's HTTP transfer route: minted by CreateTransferTicket for an
 * authenticated caller, held only in this runner's memory, consumed by their first use and dead
 * after `ttlMs` either way. A ticket is 32 random bytes (base64url), so it can be guessed no better
 * than a token can, and it is good for one path and one operation: a URL that leaks (a browser's
 * history, a proxy's log) opens nothing once used or a minute old.
 */
import { randomBytes } from "node:crypto";
import { resourceExhausted } from "../../../../lib/kit/errors.js";

export interface Ticket {
  operation: "download" | "upload";
  /** The workspace path, as the client gave it (resolved again, confined, when the ticket is used). */
  path: string;
  format: "zip" | "tar";
  overwrite: boolean;
  createParents: boolean;
  expectedSha256: string;
  expiresAt: number;
}

export class TransferTickets {
  private readonly tickets = new Map<string, Ticket>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly max = 256,
    private readonly now: () => number = Date.now,
  ) {}

  mint(t: Omit<Ticket, "expiresAt">): { id: string; expiresAt: number } {
    this.sweep();
    if (this.tickets.size >= this.max)
      throw resourceExhausted(`${this.max} transfer tickets are waiting to be used: use or let them expire (a minute)`);
    const id = randomBytes(32).toString("base64url");
    const expiresAt = this.now() + this.ttlMs;
    this.tickets.set(id, { ...t, expiresAt });
    return { id, expiresAt };
  }

  /**
   * The ticket, removed: undefined when unknown, used or expired. One that `fits` refuses (the
   * request's method is not its operation's: a HEAD, a prefetch) is left for the real request.
   */
  consume(id: string, fits: (t: Ticket) => boolean = () => true): Ticket | "unfit" | undefined {
    const t = this.tickets.get(id);
    if (!t || t.expiresAt <= this.now()) {
      this.tickets.delete(id);
      return undefined;
    }
    if (!fits(t)) return "unfit";
    this.tickets.delete(id);
    return t;
  }

  private sweep() {
    const now = this.now();
    for (const [id, t] of this.tickets) if (t.expiresAt <= now) this.tickets.delete(id);
  }
}
