/**
 * The network tools: a repl's egress policy (where its programs may connect) as agents read and set
 * it, and the policy create_repl takes. Modes are lib/egress's names; entries are checked by
 * lib/egress's own rules before core sees them, so a bad one is named in the error.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { EgressPolicySchema, Repl } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { NetworkPolicy } from "../../../../gen/devex/mcp/v1/agent_tools_pb.js";
import { checkEgressPolicy } from "../../../../lib/egress/policy.js";
import { egressFromProto, egressModeFromText, egressToProto } from "../../../../lib/egress/proto.js";
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type NetworkTools = Pick<ToolImpls, "getNetworkPolicy" | "setNetworkPolicy">;

export function networkTools({ core, sessions }: ToolContext): NetworkTools {
  return {
    async getNetworkPolicy(req, caller) {
      return replNetwork(await sessions.getRepl(caller, req.replId));
    },
    async setNetworkPolicy(req, caller) {
      const egress = egressRequest(req.policy);
      await sessions.getRepl(caller, req.replId);
      const { repl } = await core(caller).repls.setEgressPolicy({ replId: req.replId, egress });
      return replNetwork(repl);
    },
  };
}

/** The repl's effective policy as agents see it; "default" only if core reported no mode. */
export function networkPolicy(repl: Repl | undefined) {
  const p = egressFromProto(repl?.egress);
  return { mode: p?.mode ?? "default", domains: p?.domains ?? [], cidrs: p?.cidrs ?? [] };
}

function replNetwork(repl: Repl | undefined) {
  return {
    policy: networkPolicy(repl),
    deniedCidrs: repl?.egressDeniedCidrs ?? [],
    notEnforced: repl?.egressNotEnforced ?? "",
  };
}

/** An agent's policy as core takes it; undefined (the default) when left out. Throws InvalidArgument. */
export function egressRequest(p: NetworkPolicy | undefined): MessageInitShape<typeof EgressPolicySchema> | undefined {
  if (!p) return undefined;
  const mode = egressModeFromText(p.mode);
  if (mode) return egressToProto(checkEgressPolicy({ mode, domains: p.domains, cidrs: p.cidrs }));
  if (p.domains.length > 0 || p.cidrs.length > 0)
    throw invalidArgument(
      'domains and cidrs need mode "allowlist" or "allow_all"; mode "default" takes the template\'s or the server\'s policy as it is',
    );
  return {};
}
