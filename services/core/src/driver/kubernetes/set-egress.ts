/**
 * setEgress: a running repl's new egress policy replaces its NetworkPolicy's rules (one JSON patch
 * of spec.egress); the pod keeps running and the CNI applies the change. The egress proxy reads the
 * policy from core's state on its own, within a second. A runner started before NetworkPolicies
 * were per repl gets one, owned by its Deployment; a runner that is gone is not an error.
 */
import type { EgressChange } from "../driver.js";
import { withSignal } from "./apis.js";
import { type Cluster, kubeCause } from "./cluster.js";
import { buildNetworkPolicy, egressRules } from "./egress-policy.js";
import { isNotFound } from "./errors.js";
import { objectName, ownerReference, runnerSelector } from "./objects.js";

export async function setEgress(c: Cluster, change: EgressChange, signal: AbortSignal): Promise<void> {
  const name = objectName(change.replId);
  // "add" replaces the member, and also adds it where the API server dropped an empty list.
  const patch = [{ op: "add", path: "/spec/egress", value: egressRules(c.settings.egress, change.egress) }];
  try {
    await c.call("patch", "networkpolicies", () =>
      c.apis.networking.patchNamespacedNetworkPolicy({ name, namespace: c.ns, body: patch }, withSignal(signal)),
    );
    return;
  } catch (err) {
    if (!isNotFound(kubeCause(err))) throw err;
  }
  const deployment = (await c.findDeployments(runnerSelector(change.runnerId), signal))[0];
  if (!deployment) return;
  const meta = deployment.metadata!;
  const selector = deployment.spec?.selector?.matchLabels;
  // An empty podSelector would select every repl pod in the namespace.
  if (!selector || Object.keys(selector).length === 0)
    throw new Error(`the Deployment ${meta.name} has no label selector; cannot scope its NetworkPolicy`);
  const body = buildNetworkPolicy(
    { name, namespace: c.ns, labels: meta.labels ?? {}, ownerReferences: [ownerReference(deployment)] },
    selector,
    c.settings.egress,
    change.egress,
  );
  await c.call("create", "networkpolicies", () =>
    c.apis.networking.createNamespacedNetworkPolicy({ namespace: c.ns, body }, withSignal(signal)),
  );
}
