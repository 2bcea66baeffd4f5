/**
 * A repl's egress policy and the one place that decides what it allows. Used by the local driver's
 * egress path (nft rules, resolver, HTTP/TLS gate), the Kubernetes egress proxy and NetworkPolicy,
 * and core's API (validation). Addresses are judged in three tiers:
 *
 *  1. never (NEVER_CIDRS): "this network", loopback, link-local (169.254.169.254 among them), the
 *     cloud host agents (Azure's WireServer 168.63.129.16, AWS's IPv6 metadata fd00:ec2::254),
 *     multicast, reserved, the IPv6 forms that embed an IPv4 address for a relay (IPv4-compatible
 *     ::/96, 6to4 2002::/16), plus the host's own addresses and the operator's DEVEX_EGRESS_DENY_CIDRS.
 *     No policy opens them.
 *  2. private (PRIVATE_CIDRS: RFC 1918, CGNAT, IPv6 ULA): closed unless the policy's `cidrs` names them.
 *  3. the rest: open under allow_all, or under allowlist when `cidrs` names them or an allowed
 *     domain resolved to them through the repl's resolver.
 *
 * An IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address, in hex or mixed form, is
 * judged as the IPv4 address it carries. For rules that see the IPv6 address itself (nft,
 * NetworkPolicy) both tiers also list the NAT64 form of their IPv4 ranges.
 */
import { BlockList, isIP } from "node:net";
import { invalidArgument } from "../kit/errors.js";

export type EgressMode = "allow_all" | "deny_all" | "allowlist";

export interface EgressPolicy {
  mode: EgressMode;
  /** Lower-case names; "*.example.com" matches every name below example.com. */
  domains: string[];
  /** Normalised CIDRs ("203.0.113.0/24", "2001:db8::/32"). */
  cidrs: string[];
}

export const ALLOW_ALL: EgressPolicy = Object.freeze({ mode: "allow_all", domains: [], cidrs: [] }) as EgressPolicy;
export const DENY_ALL: EgressPolicy = Object.freeze({ mode: "deny_all", domains: [], cidrs: [] }) as EgressPolicy;

/** Ranges no policy opens (besides the host's own addresses and the operator's list). */
export const NEVER_CIDRS = [
  "0.0.0.0/8",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "168.63.129.16/32",
  "224.0.0.0/4",
  "240.0.0.0/4",
  // Unspecified, loopback and the deprecated IPv4-compatible addresses (::a.b.c.d).
  "::/96",
  "fe80::/10",
  "ff00::/8",
  // Inside the ULA private tier, which a policy may open; the metadata address must stay closed.
  "fd00:ec2::254/128",
  "2002::/16",
] as const;

/** Ranges closed unless a policy names them in `cidrs`. */
export const PRIVATE_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"] as const;

/** The well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d is a.b.c.d behind a translator. */
const NAT64 = [0x64, 0xff9b, 0, 0, 0, 0];
const MAPPED = [0, 0, 0, 0, 0, 0xffff];

const MAX_ENTRIES = 256;
const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** "203.0.113.7" (a host), "203.0.113.0/24" or "2001:db8::/32"; undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, bits, extra] = text.trim().split("/");
  if (extra !== undefined || !address) return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  return { address: address.toLowerCase(), prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** The IPv4 address an IPv4-mapped or NAT64 address carries (in hex or mixed form); undefined for others. */
function carriedIPv4(ip: string): string | undefined {
  if (isIP(ip) !== 6) return undefined;
  const groups = expandV6(ip);
  const prefix = groups.slice(0, 6);
  if (![MAPPED, NAT64].some((p) => p.every((g, i) => g === prefix[i]))) return undefined;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join(".");
}

/** The address as it is judged: the IPv4 address it carries, or itself. */
function judged(ip: string): string {
  return carriedIPv4(ip) ?? ip;
}

/** A range of IPv4-mapped or NAT64 addresses as the IPv4 range it carries, or itself. */
function judgedRange(c: Cidr): Cidr {
  const v4 = c.prefix >= 96 ? carriedIPv4(c.address) : undefined;
  return v4 ? networkOf({ address: v4, prefix: c.prefix - 96, family: 4 }) : c;
}

/** The ranges, and the NAT64 form of each IPv4 range among them. */
function withNat64(cidrs: readonly string[]): string[] {
  const images = cidrs.flatMap((text) => {
    const c = parseCidr(text);
    if (c?.family !== 4) return [];
    return [formatCidr(networkOf({ address: `64:ff9b::${c.address}`, prefix: 96 + c.prefix, family: 6 }))];
  });
  return [...cidrs, ...images];
}

/** Whether `inner` lies inside `outer` (same family, `outer` no longer a prefix, same network at its length). */
function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  return networkOf({ ...inner, prefix: outer.prefix }).address === networkOf(outer).address;
}

/** A set of ranges that answers whether an address lies in one of them. */
export class AddressSet {
  private readonly list = new BlockList();
  readonly cidrs: string[] = [];

  constructor(cidrs: Iterable<string> = []) {
    for (const c of cidrs) this.add(c);
  }

  add(text: string): void {
    const c = parseCidr(text);
    if (!c) throw new Error(`not an address range: ${text}`);
    this.list.addSubnet(c.address, c.prefix, c.family === 4 ? "ipv4" : "ipv6");
    this.cidrs.push(formatCidr(c));
  }

  has(ip: string): boolean {
    const a = judged(ip);
    const family = isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? "ipv4" : "ipv6");
  }
}

/** Lower case, without the root's trailing dot. */
export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** Whether `name` matches one of the domain rules ("*.x" matches names below x, not x itself). */
export function domainMatches(domains: readonly string[], name: string): boolean {
  const n = normalizeName(name);
  return domains.some((d) => (d.startsWith("*.") ? n.endsWith(d.slice(1)) && n.length > d.length - 1 : n === d));
}

/** Everything the policy check needs besides the policy: the never tier and the private tier. */
export class EgressRanges {
  readonly never: AddressSet;
  readonly private = new AddressSet(withNat64(PRIVATE_CIDRS));

  /** `denied`: the host's own addresses and the operator's DEVEX_EGRESS_DENY_CIDRS. */
  constructor(readonly denied: readonly string[] = []) {
    this.never = new AddressSet(withNat64([...NEVER_CIDRS, ...denied]));
  }

  /**
   * The never tier as CIDRs (the NAT64 forms of its IPv4 ranges among them), for the repl's record
   * (Repl.egress_denied_cidrs), the nft rules and NetworkPolicy: no range twice or inside another.
   */
  neverCidrs(): string[] {
    const all = [...new Set(this.never.cidrs)].map((c) => parseCidr(c)!);
    const inside = (a: Cidr, b: Cidr) => a !== b && contains(b, a);
    return all
      .filter((a) => !all.some((b) => inside(a, b) && (b.prefix < a.prefix || all.indexOf(b) < all.indexOf(a))))
      .map(formatCidr);
  }
}

/** A policy's own CIDRs as a set, built once per policy (policies are replaced, never changed). */
const listed = new WeakMap<EgressPolicy, AddressSet>();
function listedRanges(policy: EgressPolicy): AddressSet {
  const known = listed.get(policy);
  if (known) return known;
  const set = new AddressSet(policy.cidrs);
  listed.set(policy, set);
  return set;
}

/**
 * Whether the policy lets a connection reach `ip`. `viaAllowedName`: the address was reached by an
 * allowed domain (resolved by the repl's resolver, or named by Host/SNI/CONNECT).
 */
export function addressAllowed(
  policy: EgressPolicy,
  ranges: EgressRanges,
  ip: string,
  viaAllowedName = false,
): boolean {
  if (isIP(judged(ip)) === 0 || ranges.never.has(ip) || policy.mode === "deny_all") return false;
  if (policy.cidrs.length > 0 && listedRanges(policy).has(ip)) return true;
  if (ranges.private.has(ip)) return false;
  return policy.mode === "allow_all" || viaAllowedName;
}

/** Whether two normalised policies allow the same (their lists compared as sets). */
export function samePolicy(a: EgressPolicy, b: EgressPolicy): boolean {
  const sameSet = (x: readonly string[], y: readonly string[]) =>
    new Set(x).size === new Set(y).size && x.every((e) => y.includes(e));
  return a.mode === b.mode && sameSet(a.domains, b.domains) && sameSet(a.cidrs, b.cidrs);
}

/** Whether the policy lets the repl resolve and reach `name`. */
export function nameAllowed(policy: EgressPolicy, name: string): boolean {
  if (policy.mode === "allow_all") return true;
  if (policy.mode === "deny_all") return false;
  return domainMatches(policy.domains, name);
}

/**
 * Validates and normalises a policy from the API (the proto's own rules run first); throws
 * InvalidArgument with the offending entry.
 */
export function checkEgressPolicy(p: {
  mode: EgressMode;
  domains: readonly string[];
  cidrs: readonly string[];
}): EgressPolicy {
  if (p.domains.length > MAX_ENTRIES || p.cidrs.length > MAX_ENTRIES)
    throw invalidArgument(`an egress policy holds at most ${MAX_ENTRIES} domains and ${MAX_ENTRIES} CIDRs`);
  const domains = [...new Set(p.domains.map(normalizeName))];
  for (const d of domains)
    if (!DOMAIN.test(d) || d.length > 253)
      throw invalidArgument(`"${d}" is not a domain name (use names like "registry.npmjs.org" or "*.github.com")`);
  const never = NEVER_CIDRS.map((text) => parseCidr(text)!);
  const cidrs: string[] = [];
  for (const text of p.cidrs) {
    const c = parseCidr(text);
    if (!c)
      throw invalidArgument(`"${text}" is not an address range (use forms like "203.0.113.0/24" or "2001:db8::/32")`);
    // Always denied only when inside one never range: 0.0.0.0/1 starts and ends in never ranges but is mostly public.
    if (never.some((n) => contains(n, judgedRange(c))))
      throw invalidArgument(
        `${formatCidr(c)} is always denied (loopback, link-local, cloud metadata, multicast or reserved): no policy opens it`,
      );
    cidrs.push(formatCidr(networkOf(c)));
  }
  return { mode: p.mode, domains, cidrs: [...new Set(cidrs)] };
}

/** The range with its host bits cleared ("10.1.2.3/8" is 10.0.0.0/8), as nft and NetworkPolicy expect. */
export function networkOf(c: Cidr): Cidr {
  if (c.family === 4) {
    const n = c.address.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
    const size = 2 ** (32 - c.prefix);
    const base = Math.floor(n / size) * size;
    return { ...c, address: [24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join(".") };
  }
  let value = expandV6(c.address).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  value &= ~((1n << BigInt(128 - c.prefix)) - 1n) & ((1n << 128n) - 1n);
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // The URL parser writes IPv6 addresses in their canonical, compressed form.
  return { ...c, address: new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1) };
}

/** The eight groups of an IPv6 address, also in mixed form ("64:ff9b::169.254.169.254"). */
function expandV6(address: string): number[] {
  const [head, tail] = address.replace(/%.*$/, "").split("::");
  const part = (s: string | undefined) => (s ? s.split(":").flatMap(groupsOf) : []);
  const h = part(head);
  const t = part(tail);
  if (tail === undefined) return h;
  return [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/** One group's value, or the two groups of the IPv4 address that ends a mixed form. */
function groupsOf(text: string): number[] {
  if (!text.includes(".")) return [Number.parseInt(text, 16)];
  const [a, b, c, d] = text.split(".").map(Number);
  return [a! * 256 + b!, c! * 256 + d!];
}
