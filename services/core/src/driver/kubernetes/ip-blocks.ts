/**
 * NetworkPolicy ipBlocks from an allowed range and the ranges it must not open. The API server
 * refuses an `except` entry that is not a strict subset of its `cidr`, so each allowed range keeps
 * only the denied ranges that lie inside it (CIDR blocks either nest or are disjoint), and a range
 * that lies wholly inside a denied one yields no block at all.
 */
import type { V1IPBlock } from "@kubernetes/client-node";
import { parseCidr } from "../../../../../lib/egress/policy.js";

interface Block {
  family: 4 | 6;
  /** The network address (host bits cleared). */
  start: bigint;
  prefix: number;
}

const bitsOf = (family: 4 | 6) => (family === 4 ? 32 : 128);

function toBlock(text: string): Block {
  const c = parseCidr(text);
  if (!c) throw new Error(`not an address range: ${text}`);
  const bits = bitsOf(c.family);
  const value = c.family === 4 ? v4Value(c.address) : v6Value(c.address);
  const host = bits - c.prefix;
  return { family: c.family, start: (value >> BigInt(host)) << BigInt(host), prefix: c.prefix };
}

function v4Value(address: string): bigint {
  return address.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6Value(address: string): bigint {
  let text = address;
  // An embedded IPv4 tail ("::ffff:10.0.0.1") is the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v = v4Value(dotted[1]!);
    text = `${text.slice(0, -dotted[1]!.length)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const part = (s: string | undefined) => (s ? s.split(":").map((g) => BigInt(Number.parseInt(g, 16))) : []);
  const h = part(head);
  const t = part(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<bigint>(8 - h.length - t.length).fill(0n), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function format(b: Block): string {
  if (b.family === 4) return `${[24n, 16n, 8n, 0n].map((s) => (b.start >> s) & 255n).join(".")}/${b.prefix}`;
  const groups = [...Array(8).keys()].map((i) => Number((b.start >> BigInt((7 - i) * 16)) & 0xffffn));
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  const text =
    best.at < 0 ? hex.join(":") : `${hex.slice(0, best.at).join(":")}::${hex.slice(best.at + best.len).join(":")}`;
  return `${text}/${b.prefix}`;
}

/** Whether `inner` lies inside `outer` (equal counts). */
function contains(outer: Block, inner: Block): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const host = BigInt(bitsOf(outer.family) - outer.prefix);
  return outer.start >> host === inner.start >> host;
}

/** The family of a range ("0.0.0.0/0" → 4). */
export const familyOf = (cidr: string) => toBlock(cidr).family;

/** The normalised range ("10.1.2.3/8" → "10.0.0.0/8"). */
export const canonicalCidr = (cidr: string) => format(toBlock(cidr));

/**
 * The ipBlock that opens `allowed` but none of `denied`; undefined when `allowed` lies wholly inside
 * a denied range. `except` lists the denied ranges strictly inside `allowed`, without those inside
 * another listed one, in address order.
 */
export function ipBlock(allowed: string, denied: readonly string[]): V1IPBlock | undefined {
  const a = toBlock(allowed);
  const d = denied.map(toBlock).filter((x) => x.family === a.family);
  if (d.some((x) => contains(x, a))) return undefined;
  const inside = [...new Map(d.filter((x) => contains(a, x)).map((x) => [format(x), x])).values()];
  const outermost = inside.filter((x) => !inside.some((y) => y.prefix < x.prefix && contains(y, x)));
  outermost.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : x.prefix - y.prefix));
  const except = outermost.map(format);
  return except.length ? { cidr: format(a), except } : { cidr: format(a) };
}
