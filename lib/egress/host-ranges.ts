/** The never tier as this machine and its operator define it: the host's own addresses plus DEVEX_EGRESS_DENY_CIDRS. */
import { networkInterfaces } from "node:os";
import * as z from "../kit/zod.js";
import { EgressRanges, parseCidr } from "./policy.js";

/** Every address of this host's interfaces (a repl's traffic leaves from here, so these lead back to it). */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address.replace(/%.*$/, ""));
}

/** Parses DEVEX_EGRESS_DENY_CIDRS ("10.96.0.0/12, 203.0.113.9"); throws naming the entry that is not a range. */
export function parseDenyList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const c = parseCidr(s);
      if (!c) throw new Error(`DEVEX_EGRESS_DENY_CIDRS: "${s}" is not an address range`);
      return `${c.address}/${c.prefix}`;
    });
}

/** A setting of comma-separated ranges, parsed by parseDenyList; a bad entry is a configuration error naming it. */
export const cidrListSetting = () =>
  z.pipe(
    z._default(z.string(), ""),
    z.transform((v: string, ctx) => {
      try {
        return parseDenyList(v);
      } catch (e) {
        ctx.issues.push({ code: "custom", message: (e as Error).message.replace(/^[A-Z_]+: /, ""), input: v });
        return z.NEVER;
      }
    }),
  );

/** The ranges for core's repls: the built-in never tier, the host's addresses and the operator's list. */
export function egressRangesFor(denyCidrs: string): EgressRanges {
  return new EgressRanges([
    ...hostAddresses().map((a) => `${a}/${a.includes(":") ? 128 : 32}`),
    ...parseDenyList(denyCidrs),
  ]);
}
