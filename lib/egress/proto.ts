/** The egress policy between its proto form (devex.core.v1.EgressPolicy) and lib/egress/policy.ts's. */
import { create } from "@bufbuild/protobuf";
import {
  EgressPolicySchema,
  EgressMode as ProtoMode,
  type EgressPolicy as ProtoPolicy,
} from "../../gen/devex/core/v1/repl_pb.js";
import { checkEgressPolicy, type EgressMode, type EgressPolicy } from "./policy.js";

const modes: Record<EgressMode, ProtoMode> = {
  allow_all: ProtoMode.ALLOW_ALL,
  deny_all: ProtoMode.DENY_ALL,
  allowlist: ProtoMode.ALLOWLIST,
};

/** The checked policy, or undefined when the mode is unset (take the default). Throws InvalidArgument. */
export function egressFromProto(p: ProtoPolicy | undefined): EgressPolicy | undefined {
  const mode = (Object.keys(modes) as EgressMode[]).find((m) => modes[m] === p?.mode);
  if (!p || !mode) return undefined;
  return checkEgressPolicy({ mode, domains: p.allowDomains, cidrs: p.allowCidrs });
}

export function egressToProto(p: EgressPolicy): ProtoPolicy {
  return create(EgressPolicySchema, { mode: modes[p.mode], allowDomains: p.domains, allowCidrs: p.cidrs });
}

/** "allow_all", "deny_all", "allowlist" as the CLI and config write them. */
export function egressModeFromText(text: string): EgressMode | undefined {
  const t = text.trim().toLowerCase().replace(/-/g, "_");
  return t in modes ? (t as EgressMode) : undefined;
}
