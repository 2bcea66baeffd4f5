/**
 * A repl's resolver keeps upstream answers for their TTL, so a program that looks the same name up
 * for every request (Node's http, curl in a loop) asks the upstream once per TTL instead of once per
 * request, and the repl's upstream rate limit (resolver.ts) counts only what reaches the upstream.
 * Answers are judged by the policy each time they are served, never on the way in.
 */
import { answerAddresses } from "../../../../../../lib/egress/dns-wire.js";

/** The most answers one repl's resolver keeps; the oldest go first. */
const MAX_ENTRIES = 1024;
/** Kept at least this long (a TTL of 0 would make every request a query) and at most this long. */
const MIN_SECONDS = 5;
const MAX_SECONDS = 300;
/** An answer without addresses (NXDOMAIN, no AAAA): kept this long. */
const NEGATIVE_SECONDS = 30;

export class AnswerCache {
  private readonly entries = new Map<string, { reply: Buffer; expires: number }>();

  /** The kept answer to (name, type), carrying the asker's id; undefined when none or expired. */
  get(name: string, type: number, id: number): Buffer | undefined {
    const key = `${type} ${name}`;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    const reply = Buffer.from(entry.reply);
    reply.writeUInt16BE(id, 0);
    return reply;
  }

  put(name: string, type: number, reply: Buffer): void {
    const found = answerAddresses(reply);
    const ttl = found.length ? Math.min(...found.map((a) => a.ttl)) : NEGATIVE_SECONDS;
    const seconds = Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, ttl));
    const key = `${type} ${name}`;
    this.entries.delete(key);
    this.entries.set(key, { reply: Buffer.from(reply), expires: Date.now() + seconds * 1000 });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }
}
