/**
 * A repl's resolver: pasta forwards the namespace's 127.0.0.1:53, UDP and TCP (where the repl's
 * resolv.conf points and the nft rules send every other query), to these sockets on core's
 * loopback. The repl's resolv.conf asks for TCP (`use-vc`): pasta's UDP forwarding loses about one
 * glibc lookup in a hundred (seen with pasta 2023-03), TCP none; other resolvers may use UDP. Names the policy does not allow get NXDOMAIN; allowed
 * ones go to the upstream resolvers, and an answer carrying an address the policy never opens (a
 * name pointing at 127.0.0.1, 169.254.169.254 or a private range: DNS rebinding) comes back empty.
 * Under an allowlist the answer's addresses are opened in the namespace (nft `resolved` sets, for
 * the answer's TTL) before the answer is sent, so the connection that follows finds them open.
 * Only lookups are read (dns-wire.ts), and a repl's queries are bounded in flight and in rate.
 */
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server, type Socket as TcpSocket } from "node:net";
import {
  answerAddresses,
  emptyReply,
  type Question,
  RCODE_NXDOMAIN,
  readQuestion,
} from "../../../../../../lib/egress/dns-wire.js";
import {
  addressAllowed,
  type EgressPolicy,
  type EgressRanges,
  nameAllowed,
} from "../../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import { AnswerCache } from "./answer-cache.js";
import { forwardQuery, type UpstreamServer } from "./upstream.js";

/** Queries in flight per repl; more are dropped (a client retries), so one repl cannot flood core. */
const MAX_IN_FLIGHT = 64;
/**
 * Queries a second per repl, after a burst: well above what installs and builds look up, low enough
 * that one repl cannot make core flood the upstream resolvers every repl shares (cloud resolvers cap
 * a host's packets: AWS's at 1,024 a second per interface). Queries over it are dropped; a client retries.
 */
const QUERIES_PER_SECOND = 200;
const QUERY_BURST = 400;
/** DNS-over-TCP connections per repl at once, and how long one may stay idle. */
const MAX_TCP_CONNECTIONS = 64;
const TCP_IDLE_MS = 10_000;
const MIN_TTL = 30;
const MAX_TTL = 3600;

export interface ResolverOptions {
  upstream: UpstreamServer[];
  ranges: EgressRanges;
  /** The repl's policy now (it changes while the repl runs). */
  policy: () => EgressPolicy;
  /** Opens addresses an allowed name resolved to, under an allowlist; awaited before answering. */
  learned: (name: string, addresses: string[], ttlSeconds: number) => Promise<void>;
  log: Logger;
}

/** Up to `burst` at once, refilled at `rate` a second. */
class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

export class ReplResolver {
  private inFlight = 0;
  /** Queries that reach the upstream (answers kept in `cache` are served without one). */
  private readonly rate = new TokenBucket(QUERIES_PER_SECOND, QUERY_BURST);
  private readonly cache = new AnswerCache();

  private constructor(
    private readonly socket: Socket,
    private readonly tcp: Server,
    private readonly o: ResolverOptions,
  ) {
    socket.on("message", (msg, from) => {
      void this.serve(msg, (reply) => socket.send(reply, from.port, from.address));
    });
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    tcp.on("connection", (c) => this.serveTcp(c));
  }

  /** Listens on core's loopback (UDP and TCP), on ports of the kernel's choosing. */
  static async listen(o: ResolverOptions): Promise<ReplResolver> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => {
        socket.off("error", reject);
        socket.on("error", (err) => o.log.warn({ err }, "repl resolver socket error"));
        resolve();
      });
    });
    const tcp = createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, "127.0.0.1", () => resolve());
    }).catch((err) => {
      socket.close();
      throw err;
    });
    return new ReplResolver(socket, tcp, o);
  }

  /** Answers one query, within the repl's bounds (a query over them is dropped: the client retries). */
  private async serve(query: Buffer, send: (reply: Buffer) => void): Promise<void> {
    if (this.inFlight >= MAX_IN_FLIGHT) return;
    this.inFlight++;
    try {
      const reply = await this.answer(query);
      if (reply) send(reply);
    } catch (err) {
      this.o.log.debug({ err }, "repl resolver: query failed");
    } finally {
      this.inFlight--;
    }
  }

  /** DNS over TCP: each message behind its two-byte length, answers in any order (RFC 7766). */
  private serveTcp(c: TcpSocket): void {
    c.on("error", () => {});
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    let buffered = Buffer.alloc(0);
    c.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const query = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + query.length);
        void this.serve(Buffer.from(query), (reply) => {
          const length = Buffer.alloc(2);
          length.writeUInt16BE(reply.length);
          if (c.writable) c.write(Buffer.concat([length, reply]));
        });
      }
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  get tcpPort(): number {
    const a = this.tcp.address();
    return typeof a === "object" && a ? a.port : 0;
  }

  close(): void {
    this.socket.close();
    this.tcp.close();
    (this.tcp as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  }

  /** The upstream's answer (kept for its TTL), or undefined when the repl is over its upstream rate. */
  private async askUpstream(query: Buffer, q: Question): Promise<Buffer | undefined> {
    if (!this.rate.take()) return undefined;
    const reply = await forwardQuery(this.o.upstream, query, q.id);
    this.cache.put(q.name, q.type, reply);
    return reply;
  }

  private async answer(query: Buffer): Promise<Buffer | undefined> {
    const q = readQuestion(query);
    if (!q) return undefined;
    let policy = this.o.policy();
    if (!nameAllowed(policy, q.name)) return emptyReply(query, q, RCODE_NXDOMAIN);
    const reply = this.cache.get(q.name, q.type, q.id) ?? (await this.askUpstream(query, q));
    if (!reply) return undefined;
    // The policy may have changed while upstream answered: judge the name again by the current one.
    policy = this.o.policy();
    if (!nameAllowed(policy, q.name)) return emptyReply(query, q, RCODE_NXDOMAIN);
    const found = answerAddresses(reply);
    if (found.some((a) => !addressAllowed(policy, this.o.ranges, a.address, true))) {
      this.o.log.info({ name: q.name }, "repl resolver: an answer pointed at a denied address; answered with none");
      return emptyReply(query, q, 0);
    }
    if (policy.mode === "allowlist" && found.length) {
      const ttl = Math.min(MAX_TTL, Math.max(MIN_TTL, ...found.map((a) => a.ttl)));
      await this.o.learned(
        q.name,
        found.map((a) => a.address),
        ttl,
      );
    }
    return reply;
  }
}
