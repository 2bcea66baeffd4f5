/**
 * One repl's way out: its resolver and web gate on core's loopback, the nft rules in its namespace,
 * and pasta. The rules go in before pasta connects the namespace, so no packet leaves unjudged; a
 * policy change replaces the rules in one nft transaction (kept: the addresses learned for names the
 * new policy still allows). nft calls run one at a time, in order.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { type EgressPolicy, nameAllowed } from "../../../../../../lib/egress/policy.js";
import type { EgressSetup } from "./egress.js";
import { renderResolved, renderRules } from "./nft-rules.js";
import { runNft } from "./ns-exec.js";
import { type PastaProcess, processStart, startPasta } from "./pasta.js";
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

  /** The namespace, held open: nft and pasta reach it by this descriptor, never again by a pid that could be reused. */
  private readonly netns: number;

  private constructor(
    private readonly setup: EgressSetup,
    pid: number,
    private policy: EgressPolicy,
  ) {
    this.netns = openSync(`/proc/${pid}/ns/net`, "r");
  }

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
      const ports = {
        dns: net.resolver.port,
        dnsTcp: net.resolver.tcpPort,
        http: net.gate.port("http"),
        tls: net.gate.port("tls"),
      };
      net.pasta = await startPasta({ pasta: setup.tools.pasta, netns: net.netns, pid: t.pid, ports, signal: t.signal });
      return net;
    } catch (err) {
      net.close();
      throw err;
    }
  }

  /** pasta's pid and start time, for the runner's record (a later core kills a pasta left behind). */
  get pastaProcess(): PastaProcess | undefined {
    const pid = this.pasta?.pid;
    return pid ? { pid, start: processStart(pid) } : undefined;
  }

  /** Whether its pasta still runs (a pooled network may have lost it while it waited). */
  get alive(): boolean {
    return !this.closed && this.pasta?.exitCode === null && this.pasta.signalCode === null;
  }

  /** The policy its rules enforce (the last one set). */
  get currentPolicy(): EgressPolicy {
    return this.policy;
  }

  async setPolicy(policy: EgressPolicy, signal?: AbortSignal): Promise<void> {
    this.policy = policy;
    const now = Date.now();
    const keep = [...this.learned].filter(([name, l]) => l.expires > now && nameAllowed(policy, name));
    this.learned.clear();
    for (const [name, l] of keep) this.learned.set(name, l);
    // Kept addresses stay open for what is left of their TTL.
    const addresses = (policy.mode === "allowlist" ? keep : []).flatMap(([, l]) =>
      l.addresses.map((address) => ({ address, seconds: Math.max(1, Math.ceil((l.expires - now) / 1000)) })),
    );
    this.gate?.revalidate();
    await this.nft(renderRules(policy, this.setup.ranges, addresses), signal);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pasta?.kill("SIGKILL");
    this.resolver?.close();
    this.gate?.close();
    closeSync(this.netns);
  }

  /**
   * Opens what an allowed name resolved to. Judged again in the nft queue, behind any policy change
   * that came in while the name was being looked up: a name the new policy drops stays closed.
   */
  private async learn(name: string, addresses: string[], ttlSeconds: number): Promise<void> {
    const known = this.learned.get(name);
    const same = known && known.addresses.join() === addresses.join();
    // Opened already, for at least half this TTL more: no nft call (a lookup per request stays cheap).
    if (same && known.expires - Date.now() > (ttlSeconds * 1000) / 2) return;
    await this.nft(() => {
      if (this.policy.mode !== "allowlist" || !nameAllowed(this.policy, name)) return undefined;
      this.learned.set(name, { addresses, expires: Date.now() + ttlSeconds * 1000 });
      return renderResolved(addresses, ttlSeconds);
    });
  }

  /** Runs nft scripts one at a time, in order; a function is asked for its script when its turn comes. */
  private nft(script: string | (() => string | undefined), signal?: AbortSignal): Promise<void> {
    const run = this.nftQueue.then(() => {
      const text = typeof script === "function" ? script() : script;
      return text === undefined ? undefined : runNft(this.setup.tools, this.netns, text, signal);
    });
    this.nftQueue = run.catch(() => {});
    return run;
  }
}
