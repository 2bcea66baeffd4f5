/**
 * The nftables rules inside a repl's network namespace, as one `nft -f` script that replaces the
 * previous one atomically. The repl's processes have no capability in the namespace's user
 * namespace, so they cannot change them.
 *
 * - Every DNS query (UDP and TCP) goes to 127.0.0.1:53, where pasta hands it to the repl's resolver in
 *   core (resolver.ts), so names resolve under the policy: the repl's resolv.conf names it, and a
 *   query to any other resolver is redirected there.
 * - Allowlist: TCP to ports 80 and 443 (except to the policy's own CIDRs) goes to the web gate
 *   (web-gate.ts) through pasta, which checks the Host header or TLS server name.
 * - Redirected connections get a loopback source, as pasta only forwards connections from loopback.
 * - Filter, in order: what is addressed to the namespace itself stays in (after a redirect too: nft
 *   judges a redirected packet by its new address but its first output device); the never tier is rejected; deny_all
 *   rejects the rest; the policy's CIDRs are open; the private tier is rejected; allow_all opens the
 *   rest; an allowlist opens the addresses its names resolved to (the `resolved` sets, filled by the
 *   resolver with a timeout; UDP 443, QUIC, excepted) and rejects the rest.
 * - Input: only replies to what the repl sent (and loopback), so pasta's NAT-like UDP forwarding
 *   cannot carry datagrams from hosts the repl never reached.
 */
import { isIP } from "node:net";
import type { EgressPolicy, EgressRanges } from "../../../../../../lib/egress/policy.js";
import { parseCidr } from "../../../../../../lib/egress/policy.js";

/** Ports inside the namespace that pasta forwards to core (below 1024: no repl user can take them). */
export const NS_PORTS = { dns: 53, http: 880, tls: 843 } as const;

const NAT_TABLE = "devex_nat";
export const FILTER_TABLE = "devex_filter";

function split(cidrs: readonly string[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p) (p.family === 4 ? v4 : v6).push(`${p.address}/${p.prefix}`);
  }
  return { v4, v6 };
}

function set(name: string, type: "ipv4_addr" | "ipv6_addr", elements: string[], flags = "interval"): string {
  const body = elements.length ? ` elements = { ${elements.join(", ")} };` : "";
  const merge = flags === "interval" ? " auto-merge;" : "";
  return `  set ${name} { type ${type}; flags ${flags};${merge}${body} }`;
}

/** The script that installs the rules for `policy` (both tables replaced in one transaction). */
/** An address an allowed name resolved to, open for `seconds` more. */
export interface Learned {
  address: string;
  seconds: number;
}

export function renderRules(policy: EgressPolicy, ranges: EgressRanges, resolved: readonly Learned[] = []): string {
  const never = split(ranges.neverCidrs());
  const priv = split(ranges.private.cidrs);
  const allow = split(policy.cidrs);
  const learned = {
    v4: resolved.filter((l) => isIP(l.address) === 4).map((l) => `${l.address} timeout ${l.seconds}s`),
    v6: resolved.filter((l) => isIP(l.address) === 6).map((l) => `${l.address} timeout ${l.seconds}s`),
  };
  const gate =
    policy.mode === "allowlist"
      ? [
          "    ip daddr @allow4 accept",
          `    ip daddr != 127.0.0.0/8 tcp dport 80 redirect to :${NS_PORTS.http}`,
          `    ip daddr != 127.0.0.0/8 tcp dport 443 redirect to :${NS_PORTS.tls}`,
        ]
      : [];
  const verdict = {
    allow_all: ["    accept"],
    deny_all: [],
    // QUIC is TLS the web gate cannot see: refused, so clients fall back to TCP 443 (judged by SNI).
    allowlist: ["    udp dport 443 goto refuse", "    ip daddr @resolved4 accept", "    ip6 daddr @resolved6 accept"],
  }[policy.mode];
  const lines = [
    `table ip ${NAT_TABLE} {}`,
    `delete table ip ${NAT_TABLE}`,
    `table inet ${FILTER_TABLE} {}`,
    `delete table inet ${FILTER_TABLE}`,
    `table ip ${NAT_TABLE} {`,
    set("allow4", "ipv4_addr", allow.v4),
    "  chain output {",
    "    type nat hook output priority -100;",
    // The repl's resolv.conf names 127.0.0.1 itself (no NAT, identity.ts); queries to any other resolver come here too.
    `    ip daddr != 127.0.0.0/8 meta l4proto { tcp, udp } th dport 53 redirect to :${NS_PORTS.dns}`,
    ...gate,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority 100;",
    `    oif lo ip saddr != 127.0.0.0/8 ip daddr 127.0.0.1 udp dport ${NS_PORTS.dns} snat to 127.0.0.1`,
    `    oif lo ip saddr != 127.0.0.0/8 ip daddr 127.0.0.1 tcp dport { ${NS_PORTS.dns}, ${NS_PORTS.http}, ${NS_PORTS.tls} } snat to 127.0.0.1`,
    "  }",
    "}",
    `table inet ${FILTER_TABLE} {`,
    set("never4", "ipv4_addr", never.v4),
    set("never6", "ipv6_addr", never.v6),
    set("allow4", "ipv4_addr", allow.v4),
    set("allow6", "ipv6_addr", allow.v6),
    set("private4", "ipv4_addr", priv.v4),
    set("private6", "ipv6_addr", priv.v6),
    set("resolved4", "ipv4_addr", learned.v4, "timeout"),
    set("resolved6", "ipv6_addr", learned.v6, "timeout"),
    "  chain output {",
    "    type filter hook output priority 0; policy drop;",
    "    fib daddr type local accept",
    "    ip daddr @never4 goto refuse",
    "    ip6 daddr @never6 goto refuse",
    ...(policy.mode === "deny_all"
      ? []
      : [
          "    ip daddr @allow4 accept",
          "    ip6 daddr @allow6 accept",
          "    ip daddr @private4 goto refuse",
          "    ip6 daddr @private6 goto refuse",
          ...verdict,
        ]),
    "    goto refuse",
    "  }",
    "  chain input {",
    "    type filter hook input priority 0; policy drop;",
    "    iif lo accept",
    "    ct state established,related accept",
    "  }",
    "  chain refuse {",
    "    meta l4proto tcp reject with tcp reset",
    "    reject with icmpx admin-prohibited",
    "  }",
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** Adds addresses an allowed name resolved to, each for `seconds` (the resolver's TTL, bounded). */
export function renderResolved(addresses: readonly string[], seconds: number): string {
  const v4 = addresses.filter((a) => isIP(a) === 4);
  const v6 = addresses.filter((a) => isIP(a) === 6);
  const add = (setName: string, list: string[]) =>
    list.length
      ? [`add element inet ${FILTER_TABLE} ${setName} { ${list.map((a) => `${a} timeout ${seconds}s`).join(", ")} }`]
      : [];
  return `${[...add("resolved4", v4), ...add("resolved6", v6)].join("\n")}\n`;
}
