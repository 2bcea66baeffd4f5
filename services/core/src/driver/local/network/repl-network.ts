/**
 * One repl's way out: its resolver and web gate on core's loopback, the nft rules in its namespace,
 * and pasta. The rules go in before pasta connects the namespace, so no packet leaves unjudged; a
 * policy change replaces the rules in one nft transaction (kept: the addresses learned for names the
 * new policy still allows). nft calls run one at a time, in order.
 */
import type { ChildProcess } from "node:child_process";
import { type EgressPolicy, nameAllowed } from "../../../../../../lib/egress/policy.js";
import type { EgressSetup } from "./egress.js";
import { renderResolved, renderRules } from "./nft-rules.js";
import { runNft } from "./ns-exec.js";
import { startPasta } from "./pasta.js";
import { ReplResolver } from "./resolver.js";
import { WebGate } from "./web-gate.js";

interface Learned {
  addresses: string[];
  expires: number;
}

export class ReplNetwork {
  private pasta?: ChildProcess;
  private resolver?: ReplResolver;
  private gate?: WebGate;
  private nftQueue: Promise<unknown> = Promise.resolve();
  /** Names the resolver answered under an allowlist, with their addresses, until their TTL ends. */
  private readonly learned = new Map<string, Learned>();
  private closed = false;

  private constructor(
    private readonly setup: EgressSetup,
    private readonly pid: number,
    private policy: EgressPolicy,
  ) {}

  /** Connects the namespace of `pid` (a runner) to the outside under `policy`. */
  static async attach(
    setup: EgressSetup,
    t: { pid: number; policy: EgressPolicy; signal: AbortSignal },
  ): Promise<ReplNetwork> {
    const net = new ReplNetwork(setup, t.pid, t.policy);
    try {
      const common = { ranges: setup.ranges, policy: () => net.policy, log: setup.log };
      net.resolver = await ReplResolver.listen({
        ...common,
        upstream: setup.upstream,
        learned: (name, addresses, ttl) => net.learn(name, addresses, ttl),
      });
      net.gate = await WebGate.listen({ ...common, lookup: setup.lookup });
      await net.nft(renderRules(t.policy, setup.ranges), t.signal);
      const ports = { dns: net.resolver.port, http: net.gate.port("http"), tls: net.gate.port("tls") };
      net.pasta = await startPasta({ pasta: setup.tools.pasta, pid: t.pid, ports, signal: t.signal });
      return net;
    } catch (err) {
      net.close();
      throw err;
    }
  }

  /** pasta's pid, for the runner's record (a later core kills a pasta left behind). */
  get pastaPid(): number | undefined {
    return this.pasta?.pid;
  }

  async setPolicy(policy: EgressPolicy, signal?: AbortSignal): Promise<void> {
    this.policy = policy;
    const now = Date.now();
    const keep = [...this.learned].filter(([name, l]) => l.expires > now && nameAllowed(policy, name));
    this.learned.clear();
    for (const [name, l] of keep) this.learned.set(name, l);
    // Kept addresses come back without their remaining TTL: a minute, renewed by the next lookup.
    const addresses = policy.mode === "allowlist" ? keep.flatMap(([, l]) => l.addresses) : [];
    await this.nft(renderRules(policy, this.setup.ranges, addresses), signal);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pasta?.kill("SIGKILL");
    this.resolver?.close();
    this.gate?.close();
  }

  private async learn(name: string, addresses: string[], ttlSeconds: number): Promise<void> {
    this.learned.set(name, { addresses, expires: Date.now() + ttlSeconds * 1000 });
    await this.nft(renderResolved(addresses, ttlSeconds));
  }

  private nft(script: string, signal?: AbortSignal): Promise<void> {
    const run = this.nftQueue.then(() => runNft(this.setup.tools, this.pid, script, signal));
    this.nftQueue = run.catch(() => {});
    return run;
  }
}
