/**
 * A repl's web gate: under an allowlist the namespace's TCP connections to ports 80 and 443 arrive
 * here (nft redirect, then pasta) and get through only for names the policy allows. Plain HTTP is
 * forwarded request by request (http-gate.ts: each request's Host or absolute URI judged, so a
 * second request on a kept-alive connection cannot name another host); TLS by the ClientHello's
 * server name (tls-gate.ts), then copied as bytes (TLS is not terminated). Either way the gate
 * resolves the name itself and connects to an address the policy allows for it, so neither a forged
 * Host nor a shared address (one server, many names) opens an unlisted name. A policy change closes
 * the tunnels (TLS, WebSocket) whose name it no longer allows; each gate holds at most
 * MAX_CONNECTIONS clients, so one repl cannot exhaust core's descriptors.
 */
import type { Server, Socket } from "node:net";
import {
  addressAllowed,
  type EgressPolicy,
  type EgressRanges,
  nameAllowed,
} from "../../../../../../lib/egress/policy.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import { createHttpGate } from "./http-gate.js";
import { createTlsGate } from "./tls-gate.js";

/** Clients per gate and kind at once; more are closed at once. */
export const MAX_CONNECTIONS = 256;
/** How long a client may take to send its request head or ClientHello (default). */
export const SNIFF_TIMEOUT_MS = 10_000;
export const CONNECT_TIMEOUT_MS = 10_000;

export interface WebGateOptions {
  ranges: EgressRanges;
  policy: () => EgressPolicy;
  lookup: (name: string) => Promise<string[]>;
  log: Logger;
  /** How long a client may take to send its request head or ClientHello; default 10 s. */
  sniffTimeoutMs?: number;
}

type Kind = "http" | "tls";

/** What the two gates share: the decision, the upstream address, the tunnels and the refusals' log. */
export class GateCore {
  /** Open tunnels (TLS, upgraded HTTP) by the name they were let through for. */
  private readonly tunnels = new Map<Socket, string>();

  constructor(readonly o: WebGateOptions) {}

  /** Why `name` may not be reached, or the address to connect to. */
  async judge(name: string | undefined, none: string): Promise<{ address: string } | { refused: string }> {
    const policy = this.o.policy();
    if (!name) return { refused: `no name to check (${none})` };
    if (!nameAllowed(policy, name)) return { refused: `${name} is not in this repl's egress allowlist` };
    const addresses = (await this.o.lookup(name).catch(() => [])).filter((a) =>
      addressAllowed(policy, this.o.ranges, a, true),
    );
    if (!addresses[0]) return { refused: `${name} does not resolve to an address this repl may reach` };
    return { address: addresses[0] };
  }

  /** Keeps a tunnel's sockets until they close, so a policy change can end them. */
  tunnel(name: string, ...sockets: Socket[]): void {
    for (const s of sockets) {
      this.tunnels.set(s, name);
      s.once("close", () => this.tunnels.delete(s));
    }
  }

  revalidate(): void {
    const policy = this.o.policy();
    for (const [s, name] of this.tunnels) if (!nameAllowed(policy, name)) s.destroy();
  }

  refused(why: string): void {
    this.o.log.debug({ why }, "web gate: refused a connection");
  }

  closeAll(): void {
    for (const s of this.tunnels.keys()) s.destroy();
  }
}

export class WebGate {
  private constructor(
    private readonly servers: Record<Kind, Server>,
    private readonly core: GateCore,
  ) {}

  static async listen(o: WebGateOptions): Promise<WebGate> {
    const core = new GateCore(o);
    const servers: Record<Kind, Server> = { http: createHttpGate(core), tls: createTlsGate(core) };
    for (const server of Object.values(servers)) {
      server.maxConnections = MAX_CONNECTIONS;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return new WebGate(servers, core);
  }

  port(kind: Kind): number {
    const a = this.servers[kind].address();
    return typeof a === "object" && a ? a.port : 0;
  }

  /** After a policy change: ends the tunnels whose name the policy no longer allows. */
  revalidate(): void {
    this.core.revalidate();
  }

  close(): void {
    for (const s of Object.values(this.servers)) {
      s.close();
      (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
    this.core.closeAll();
  }
}
