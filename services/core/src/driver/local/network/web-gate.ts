/**
 * A repl's web gate: under an allowlist the namespace's TCP connections to ports 80 and 443 arrive
 * here (nft redirect, then pasta), and are let through only when the name they ask for is allowed:
 * the Host header of plain HTTP, the server name (SNI) of a TLS ClientHello. The gate then resolves
 * that name itself and connects to an address the policy allows for it, so neither a forged Host
 * nor a shared address (one server, many names) opens an unlisted name. The first bytes are replayed
 * to the server; nothing else is read or changed.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import {
  addressAllowed,
  type EgressPolicy,
  type EgressRanges,
  nameAllowed,
} from "../../../../../../lib/egress/policy.js";
import { SNIFF_LIMIT, type Sniffed, sniffHttpHost, sniffTlsServerName } from "../../../../../../lib/egress/sniff.js";
import type { Logger } from "../../../../../../lib/kit/log.js";

/** How long a client may take to send its request head or ClientHello (default). */
const SNIFF_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface WebGateOptions {
  ranges: EgressRanges;
  policy: () => EgressPolicy;
  lookup: (name: string) => Promise<string[]>;
  log: Logger;
  /** How long a client may take to send its request head or ClientHello; default 10 s. */
  sniffTimeoutMs?: number;
}

type Kind = "http" | "tls";
const upstreamPort: Record<Kind, number> = { http: 80, tls: 443 };
const sniffers: Record<Kind, (b: Buffer) => Sniffed> = { http: sniffHttpHost, tls: sniffTlsServerName };

export class WebGate {
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly servers: Record<Kind, Server>,
    private readonly o: WebGateOptions,
  ) {}

  static async listen(o: WebGateOptions): Promise<WebGate> {
    const servers = { http: createServer(), tls: createServer() };
    const gate = new WebGate(servers, o);
    for (const kind of ["http", "tls"] as const) {
      servers[kind].on("connection", (s) => gate.admit(kind, s));
      await new Promise<void>((resolve, reject) => {
        servers[kind].once("error", reject);
        servers[kind].listen(0, "127.0.0.1", () => resolve());
      });
    }
    return gate;
  }

  port(kind: Kind): number {
    const a = this.servers[kind].address();
    return typeof a === "object" && a ? a.port : 0;
  }

  close(): void {
    for (const s of Object.values(this.servers)) s.close();
    for (const s of this.sockets) s.destroy();
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.once("close", () => this.sockets.delete(s));
  }

  private admit(kind: Kind, client: Socket): void {
    this.track(client);
    client.on("error", () => {});
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), this.o.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
    client.once("close", () => clearTimeout(timer));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const sniffed = sniffers[kind](head);
      if (sniffed === "more" && head.length < SNIFF_LIMIT) return;
      client.off("data", onData);
      client.pause();
      clearTimeout(timer);
      void this.pass(kind, client, head, sniffed);
    };
    client.on("data", onData);
  }

  private async pass(kind: Kind, client: Socket, head: Buffer, sniffed: Sniffed): Promise<void> {
    const policy = this.o.policy();
    const name = typeof sniffed === "object" && "name" in sniffed ? sniffed.name.toLowerCase() : undefined;
    if (!name || !nameAllowed(policy, name)) {
      const why = name
        ? `${name} is not in this repl's egress allowlist`
        : `no name to check (${(sniffed as { none?: string }).none ?? "incomplete"})`;
      return this.refuse(kind, client, why);
    }
    const addresses = (await this.o.lookup(name).catch(() => [])).filter((a) =>
      addressAllowed(policy, this.o.ranges, a, true),
    );
    if (!addresses.length)
      return this.refuse(kind, client, `${name} does not resolve to an address this repl may reach`);
    const server = connect({ host: addresses[0], port: upstreamPort[kind], timeout: CONNECT_TIMEOUT_MS });
    this.track(server);
    server.once("timeout", () => server.destroy(new Error("connect timed out")));
    server.once("connect", () => {
      server.setTimeout(0);
      server.write(head);
      client.pipe(server);
      server.pipe(client);
      client.resume();
    });
    server.once("error", (err) => {
      this.o.log.debug({ err, name }, "web gate: upstream connection failed");
      client.destroy();
    });
    client.once("close", () => server.destroy());
    server.once("close", () => client.destroy());
  }

  private refuse(kind: Kind, client: Socket, why: string): void {
    this.o.log.debug({ why }, "web gate: refused a connection");
    if (kind === "tls") {
      client.destroy();
      return;
    }
    const body = `Devex: ${why}.\n`;
    client.end(
      `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}
