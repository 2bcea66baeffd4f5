/** Which egress policy a repl runs under: its own, else its template's default, else the operator's. */
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import type { ReplRecord } from "../state/store.js";
import type { ReplDeps } from "./deps.js";

/** The policy of a repl created from `template` without one, or reset to the default. */
export async function defaultEgress(
  deps: Pick<ReplDeps, "templates" | "egressDefault">,
  r: Pick<ReplRecord, "owner" | "template">,
): Promise<EgressPolicy> {
  return (await deps.templates.find(r.owner, r.template))?.egress ?? deps.egressDefault;
}

/**
 * The policy the repl runs under. Records older than egress policies have none stored: theirs is
 * the default of the operator's template they were made from, as this core read it at start.
 */
export function effectiveEgress(
  deps: Pick<ReplDeps, "templates" | "egressDefault">,
  r: Pick<ReplRecord, "egress" | "template">,
): EgressPolicy {
  return r.egress ?? deps.templates.builtin(r.template)?.egress ?? deps.egressDefault;
}
