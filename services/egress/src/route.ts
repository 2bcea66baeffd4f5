/**
 * Where a repl may go: the one decision of the proxy, made with lib/egress/policy.ts. A name must be
 * allowed by the policy and is resolved by the proxy itself; of its addresses only those the policy
 * opens to an allowed name count (never the never or private tiers, unless the policy names the
 * range). An address literal counts only if the policy opens that address on its own.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { addressAllowed, type EgressPolicy, type EgressRanges, nameAllowed } from "../../../lib/egress/policy.js";

/** Resolves a name to its addresses (IPv4 and IPv6). */
export type Resolve = (name: string) => Promise<string[]>;

export const systemResolve: Resolve = async (name) =>
  (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

export type Route = { ok: true; address: string } | { ok: false; status: 403 | 502; reason: string };

export async function route(
  policy: EgressPolicy,
  ranges: EgressRanges,
  host: string,
  resolve: Resolve,
): Promise<Route> {
  const literal = host.replace(/^\[(.*)\]$/, "$1");
  if (isIP(literal))
    return addressAllowed(policy, ranges, literal)
      ? { ok: true, address: literal }
      : { ok: false, status: 403, reason: `the repl's egress policy does not allow ${literal}` };
  if (!nameAllowed(policy, host))
    return { ok: false, status: 403, reason: `the repl's egress policy does not allow ${host}` };
  let addresses: string[];
  try {
    addresses = await resolve(host);
  } catch {
    return { ok: false, status: 502, reason: `${host} could not be resolved` };
  }
  const address = addresses.find((a) => addressAllowed(policy, ranges, a, true));
  if (address) return { ok: true, address };
  return {
    ok: false,
    status: 403,
    reason: `${host} resolves only to addresses no egress policy opens (private, loopback, link-local or the cluster's)`,
  };
}
