/**
 * The repl's egress policy as the CLI reads and writes it: the flags of `devex network <repl>
 * [--allow-all | --deny-all | --allow <entries> | --default]` and `devex create --network`, and how a
 * policy prints. Entries are told apart (address ranges from domain names) and checked by lib/egress,
 * as core checks them.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  EgressMode,
  type EgressPolicySchema,
  type EgressPolicy as ProtoPolicy,
  type Repl,
} from "../../gen/devex/core/v1/repl_pb.js";
import { ALLOW_ALL, checkEgressPolicy, DENY_ALL, type EgressPolicy, parseCidr } from "../../lib/egress/policy.js";
import { egressModeFromText, egressToProto } from "../../lib/egress/proto.js";
import { DomainError } from "../../lib/kit/errors.js";
import { CliError, UsageError } from "./cli-error.js";

export type PolicyInit = MessageInitShape<typeof EgressPolicySchema>;

const modeNames: Record<EgressMode, string> = {
  [EgressMode.UNSPECIFIED]: "default",
  [EgressMode.ALLOW_ALL]: "allow-all",
  [EgressMode.DENY_ALL]: "deny-all",
  [EgressMode.ALLOWLIST]: "allowlist",
};

/** "allow-all", "deny-all", "allowlist", or "default" when core reports no mode. */
export function networkModeName(policy: ProtoPolicy | undefined): string {
  return modeNames[policy?.mode ?? EgressMode.UNSPECIFIED];
}

/** Comma-separated entries (repeatable) split into domain names and address ranges. */
function splitEntries(lists: readonly string[]): { domains: string[]; cidrs: string[] } {
  const entries = lists.flatMap((l) => l.split(",")).map((e) => e.trim());
  if (entries.some((e) => e === "")) throw new UsageError("an empty entry in a list of domains and CIDRs");
  return {
    domains: entries.filter((e) => parseCidr(e) === undefined),
    cidrs: entries.filter((e) => parseCidr(e) !== undefined),
  };
}

/**
 * The policy as core takes it, checked here first by lib/egress's own rules: a bad entry is named
 * in the message (core's request validation could only say which pattern it broke).
 */
function checked(policy: EgressPolicy): PolicyInit {
  try {
    return egressToProto(checkEgressPolicy(policy));
  } catch (e) {
    if (e instanceof DomainError) throw new CliError(`invalid argument: ${e.message}`);
    throw e;
  }
}

/** `--network` of create: allow-all, deny-all, or a list of domains and CIDRs (an allowlist). */
export function networkFromText(text: string): PolicyInit {
  const mode = egressModeFromText(text);
  if (mode) return checked({ mode, domains: [], cidrs: [] });
  return checked({ mode: "allowlist", ...splitEntries([text]) });
}

export interface NetworkFlags {
  allowAll: boolean;
  denyAll: boolean;
  allow: string[];
  useDefault: boolean;
}

/** The policy the flags of `devex network` ask for; undefined when they ask for none (show it). */
export function networkFromFlags(f: NetworkFlags): PolicyInit | undefined {
  const modes = [f.allowAll, f.denyAll, f.useDefault].filter(Boolean).length;
  if (modes > 1) throw new UsageError("choose one of --allow-all, --deny-all and --default");
  if (f.allow.length === 0) {
    if (f.allowAll) return checked(ALLOW_ALL);
    if (f.denyAll) return checked(DENY_ALL);
    // An unset mode: the template's or the operator's default.
    return f.useDefault ? {} : undefined;
  }
  if (f.denyAll || f.useDefault) throw new UsageError("--allow makes an allowlist: leave out --deny-all and --default");
  const entries = splitEntries(f.allow);
  if (!f.allowAll) return checked({ mode: "allowlist", ...entries });
  if (entries.domains.length > 0)
    throw new UsageError("--allow-all already allows every domain: with it, --allow takes only CIDRs (private ranges)");
  return checked({ mode: "allow_all", domains: [], cidrs: entries.cidrs });
}

export function formatNetwork(repl: Repl): string {
  const p = repl.egress;
  const list = (items: readonly string[] | undefined) => (items?.length ? items.join(" ") : "(none)");
  return [
    `repl:           ${repl.replId}`,
    `mode:           ${networkModeName(p)}`,
    `domains:        ${list(p?.allowDomains)}`,
    `cidrs:          ${list(p?.allowCidrs)}`,
    `always denied:  ${list(repl.egressDeniedCidrs)}`,
    ...(repl.egressNotEnforced ? [`not enforced:   ${repl.egressNotEnforced}`] : []),
    "",
  ].join("\n");
}
