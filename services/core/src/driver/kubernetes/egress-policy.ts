/**
 * A repl's egress policy in Kubernetes terms (issue 22):
 *
 *   NetworkPolicy devex-<replId>  selects the repl's pod; its egress rules are the policy's addresses:
 *     allow_all  0.0.0.0/0 and ::/0 except the never tier, the cluster's own ranges and the private
 *                tier, plus each CIDR the policy names (private ones included) except the never tier
 *                and the cluster's ranges; and the egress proxy
 *     allowlist  the CIDRs the policy names (same exceptions) and the egress proxy, for its names
 *     deny_all   nothing
 *     and in every mode the object storage the pod's restore and persist containers use
 *     (DEVEX_K8S_STORAGE_CIDRS): they share the pod's network
 *   HTTP(S)_PROXY in the runner's environment: the egress proxy (services/egress) with the repl's
 *     credential (lib/contracts/egress-proxy.ts), which allows names by the same policy.
 *
 * NetworkPolicies add up: infra/k8s/base/network-policies.yaml's repl-isolation gives every repl pod
 * DNS (kube-dns) and core's API and nothing else, so this object is the only way out.
 */
import type { V1EnvVar, V1NetworkPolicy, V1NetworkPolicyEgressRule, V1OwnerReference } from "@kubernetes/client-node";
import { type EgressPolicy, EgressRanges } from "../../../../../lib/egress/policy.js";
import { ipBlock } from "./ip-blocks.js";

/** The egress proxy repl pods reach names through (infra/k8s/base/egress.yaml). */
export interface EgressProxySettings {
  /** e.g. http://devex-egress.devex.svc:3128 */
  url: string;
  /** The namespace of the proxy's pods (label app.kubernetes.io/name: devex-egress). */
  namespace: string;
  /** The secret the repl credentials are HMACs under, shared with the proxy. */
  secret: string;
}

export interface KubernetesEgressSettings {
  /** The operator's DEVEX_EGRESS_DENY_CIDRS plus the cluster's own ranges (pods, services, API server). */
  deniedCidrs: string[];
  /** The S3 endpoint's ranges, open in every mode (restore and persist run in the pod's network). */
  storageCidrs: string[];
  /** Unset: names cannot be allowed (an allowlist opens only its CIDRs) and no proxy is configured. */
  proxy?: EgressProxySettings;
}

export const EGRESS_PROXY_LABELS = { "app.kubernetes.io/name": "devex-egress" };
/** The key of the repl's Secret that holds its egress proxy token. */
export const EGRESS_TOKEN_KEY = "egress-token";

/** The egress rules of `policy` (an empty list denies everything). */
export function egressRules(egress: KubernetesEgressSettings, policy: EgressPolicy): V1NetworkPolicyEgressRule[] {
  const ranges = new EgressRanges(egress.deniedCidrs);
  const never = ranges.neverCidrs();
  const closed = [...never, ...ranges.private.cidrs];
  const open = policy.mode !== "deny_all";
  const internet = policy.mode === "allow_all" ? ["0.0.0.0/0", "::/0"].map((c) => ipBlock(c, closed)) : [];
  const named = open ? policy.cidrs.map((c) => ipBlock(c, never)) : [];
  // The operator's storage ranges may be private (an in-cluster MinIO): only the never tier is carved out.
  const storage = egress.storageCidrs.map((c) => ipBlock(c, never));
  const rules: V1NetworkPolicyEgressRule[] = [...internet, ...named, ...storage]
    .filter((b) => b !== undefined)
    .map((b) => ({ to: [{ ipBlock: b }] }));
  if (open && egress.proxy) rules.push(proxyRule(egress.proxy));
  return rules;
}

function proxyRule(proxy: EgressProxySettings): V1NetworkPolicyEgressRule {
  const url = new URL(proxy.url);
  return {
    to: [
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": proxy.namespace } },
        podSelector: { matchLabels: EGRESS_PROXY_LABELS },
      },
    ],
    ports: [{ port: Number(url.port || 80), protocol: "TCP" }],
  };
}

export function buildNetworkPolicy(
  meta: { name: string; namespace: string; labels: Record<string, string>; ownerReferences: V1OwnerReference[] },
  podSelector: Record<string, string>,
  egress: KubernetesEgressSettings,
  policy: EgressPolicy,
): V1NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta,
    spec: { podSelector: { matchLabels: podSelector }, policyTypes: ["Egress"], egress: egressRules(egress, policy) },
  };
}

/**
 * HTTP_PROXY and friends for the runner (and so every command it starts): the proxy URL with the
 * repl's credential, the token taken from the repl's Secret by reference ($(…) expansion), so the
 * Deployment's spec never holds it.
 */
export function proxyEnv(proxy: EgressProxySettings, replId: string, secretName: string, coreUrl: string): V1EnvVar[] {
  const url = new URL(proxy.url);
  const withCredential = `${url.protocol}//${encodeURIComponent(replId)}:$(DEVEX_EGRESS_TOKEN)@${url.host}`;
  const direct = ["localhost", "127.0.0.1", "::1", ".svc", ".cluster.local", new URL(coreUrl).hostname].join(",");
  return [
    { name: "DEVEX_EGRESS_TOKEN", valueFrom: { secretKeyRef: { name: secretName, key: EGRESS_TOKEN_KEY } } },
    ...["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].map((name) => ({ name, value: withCredential })),
    ...["NO_PROXY", "no_proxy"].map((name) => ({ name, value: direct })),
  ];
}
