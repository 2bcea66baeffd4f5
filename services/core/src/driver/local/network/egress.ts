/**
 * Outbound network for local repls (DEVEX_EGRESS): what this machine has for it, and the setup each
 * repl's network (repl-network.ts) is made from. Needs a private network namespace per runner
 * (bubblewrap, proxied access), pasta (Debian: passt), nft (nftables) and nsenter (util-linux).
 */
import { ALLOW_ALL, type EgressPolicy, type EgressRanges } from "../../../../../../lib/egress/policy.js";
import { findProgram } from "../../../../../../lib/kit/find-program.js";
import type { Logger } from "../../../../../../lib/kit/log.js";
import type { NamespaceTools } from "./ns-exec.js";
import { type UpstreamServer, upstreamLookup, upstreamServers } from "./upstream.js";

export interface EgressSetup {
  tools: NamespaceTools & { pasta: string };
  upstream: UpstreamServer[];
  lookup: (name: string) => Promise<string[]>;
  ranges: EgressRanges;
  /** The policy a pooled runner's network is connected under before it has a repl (EgressConfig). */
  pooledPolicy: EgressPolicy;
  log: Logger;
}

export interface EgressConfig {
  /** "auto": when the programs are here; "pasta": required; "off": repls have no way out. */
  mode: "auto" | "pasta" | "off";
  /** DEVEX_EGRESS_DNS. */
  dns: string;
  ranges: EgressRanges;
  /**
   * The operator's default (DEVEX_EGRESS_DEFAULT; absent: allow_all, as core's), which most repls
   * run under: pooled runners are connected under it ahead of time, so a start only changes the
   * rules of a repl with another policy.
   */
  defaultPolicy?: EgressPolicy;
  log: Logger;
}

/** The setup, or why there is none (undefined setup); throws when DEVEX_EGRESS=pasta cannot be had. */
export function egressSetup(c: EgressConfig, privateNetwork: boolean): { setup?: EgressSetup; description: string } {
  if (c.mode === "off") return { description: "off (DEVEX_EGRESS=off): repls have no outbound network" };
  if (!privateNetwork)
    return {
      description:
        "not filtered: runners have no private network namespace (no bubblewrap, direct access or DEVEX_SANDBOX_NETWORK)",
    };
  const programs = { pasta: findProgram("pasta"), nft: findProgram("nft"), nsenter: findProgram("nsenter") };
  const missing = Object.entries(programs)
    .filter(([, path]) => !path)
    .map(([name]) => name);
  const problem =
    process.getuid?.() !== 0
      ? "core does not run as root (pasta needs /dev/net/tun and the capability over the namespace bubblewrap makes; see network/pasta.ts)"
      : missing.length
        ? `${missing.join(", ")} not installed (Debian: passt, nftables, util-linux)`
        : undefined;
  if (problem && c.mode === "pasta") throw new Error(`DEVEX_EGRESS=pasta but ${problem}`);
  if (problem) return { description: `none, repls have no outbound network: ${problem}` };
  const upstream = upstreamServers(c.dns);
  if (!upstream.length)
    throw new Error("no resolver for repls: set DEVEX_EGRESS_DNS or add a nameserver to /etc/resolv.conf");
  const tools = { pasta: programs.pasta!, nft: programs.nft!, nsenter: programs.nsenter! };
  return {
    setup: {
      tools,
      upstream,
      lookup: upstreamLookup(upstream),
      ranges: c.ranges,
      pooledPolicy: c.defaultPolicy ?? ALLOW_ALL,
      log: c.log,
    },
    description: `pasta per repl with an egress policy (resolvers ${upstream.map((s) => s.address).join(", ")})`,
  };
}
