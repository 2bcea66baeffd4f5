/** Which egress policy a repl runs under: its own, else its template's default, else the operator's. */
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import type { ReplRecord } from "../state/store.js";
import type { ReplDeps } from "./deps.js";

/** The policy of a repl created from `template` without one (or reset to the default). */
export function defaultEgress(deps: Pick<ReplDeps, "templates" | "egressDefault">, template: string): EgressPolicy {
  return deps.templates.get(template)?.egress ?? deps.egressDefault;
}

/** The policy the repl runs under; records older than egress policies have none stored. */
export function effectiveEgress(
  deps: Pick<ReplDeps, "templates" | "egressDefault">,
  r: Pick<ReplRecord, "egress" | "template">,
): EgressPolicy {
  return r.egress ?? defaultEgress(deps, r.template);
}
