/**
 * What the API server and the CNI would decide about rendered manifests, without a cluster, for
 * k8s-infra.test.ts: a subset of the LimitRanger and ResourceQuota admission plugins
 * (plugin/pkg/admission/limitranger, pkg/quota/v1/evaluator/core) and of NetworkPolicy semantics,
 * enough for the objects in infra/k8s and the ones the Kubernetes driver builds. Quantities are
 * compared as integers (milli-units), so 250m + 50m is exactly 300m.
 */
import type { Obj } from "./k8s-kustomize.js";

type ResourceList = Record<string, string | number>;

const suffixes: Record<string, number> = {
  m: 1,
  "": 1e3,
  k: 1e6,
  M: 1e9,
  G: 1e12,
  T: 1e15,
  Ki: 2 ** 10 * 1e3,
  Mi: 2 ** 20 * 1e3,
  Gi: 2 ** 30 * 1e3,
  Ti: 2 ** 40 * 1e3,
};

/** A Kubernetes quantity in thousandths of its unit ("250m" → 250, "1Gi" → 2^30 · 1000). */
export function milli(quantity: string | number): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(quantity));
  if (!m) throw new Error(`not a quantity: ${quantity}`);
  return Math.round(Number(m[1]) * suffixes[m[2] ?? ""]!);
}

type Totals = Record<string, number>;

function add(a: Totals, b: ResourceList = {}): Totals {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + milli(v);
  return out;
}

function max(a: Totals, b: ResourceList = {}): Totals {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, milli(v));
  return out;
}

/** A container's requests and limits after the LimitRange's defaults (only where it states none). */
function effective(container: Obj, item: Obj | undefined) {
  const own = container.resources ?? {};
  const limits: ResourceList = { ...item?.default, ...own.limits };
  const requests: ResourceList = { ...item?.defaultRequest };
  for (const [k, v] of Object.entries(limits)) if (own.limits?.[k] !== undefined) requests[k] = v;
  Object.assign(requests, own.requests);
  return { requests, limits };
}

/** A pod's requests and limits as admission counts them: the larger of its containers' sum and any
 * one init container (they run before, one at a time), plus the RuntimeClass's overhead. */
export function podTotals(spec: Obj, item?: Obj, overhead: ResourceList = {}) {
  let requests: Totals = {};
  let limits: Totals = {};
  for (const c of spec.containers ?? []) {
    const e = effective(c, item);
    requests = add(requests, e.requests);
    limits = add(limits, e.limits);
  }
  for (const c of spec.initContainers ?? []) {
    const e = effective(c, item);
    requests = max(requests, e.requests);
    limits = max(limits, e.limits);
  }
  return { requests: add(requests, overhead), limits: add(limits, overhead) };
}

function bounds(what: string, item: Obj, requests: Totals, limits: Totals): string[] {
  const problems: string[] = [];
  for (const [r, q] of Object.entries(item.min ?? {})) {
    if (!(r in requests) || requests[r]! < milli(q as string)) problems.push(`${what}: ${r} request below min ${q}`);
    if (r in limits && limits[r]! < milli(q as string)) problems.push(`${what}: ${r} limit below min ${q}`);
  }
  for (const [r, q] of Object.entries(item.max ?? {})) {
    if (!(r in limits) || limits[r]! > milli(q as string)) problems.push(`${what}: ${r} limit above max ${q}`);
    if (r in requests && requests[r]! > milli(q as string)) problems.push(`${what}: ${r} request above max ${q}`);
  }
  return problems;
}

/** Why LimitRanger would refuse a pod with `spec` ([] when it admits it). Ephemeral containers are
 * added through pods/ephemeralcontainers, which LimitRanger does not handle, and may state no
 * resources: they are not checked. */
export function limitRangeProblems(limitRange: Obj, spec: Obj): string[] {
  const container = limitRange.spec.limits.find((l: Obj) => l.type === "Container");
  const pod = limitRange.spec.limits.find((l: Obj) => l.type === "Pod");
  const problems: string[] = [];
  if (container)
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const e = effective(c, container);
      problems.push(...bounds(`container ${c.name}`, container, add({}, e.requests), add({}, e.limits)));
    }
  if (pod) {
    const totals = podTotals(spec, container);
    problems.push(...bounds("pod", pod, totals.requests, totals.limits));
  }
  return problems;
}

/** The quota resources an object counts against (ResourceQuota's names; [] for kinds not modelled here). */
export function quotaResources(obj: Obj): string[] {
  const byKind: Record<string, string> = {
    Deployment: "count/deployments.apps",
    Secret: "secrets",
    Service: "services",
    NetworkPolicy: "count/networkpolicies.networking.k8s.io",
    Ingress: "count/ingresses.networking.k8s.io",
    Middleware: "count/middlewares.traefik.io",
    IngressRoute: "count/ingressroutes.traefik.io",
    ConfigMap: "configmaps",
    PersistentVolumeClaim: "persistentvolumeclaims",
  };
  const own = byKind[obj.kind];
  if (!own) return [];
  const extra =
    obj.kind === "Service" && obj.spec?.type === "LoadBalancer"
      ? ["services.loadbalancers", "services.nodeports"]
      : obj.kind === "Service" && obj.spec?.type === "NodePort"
        ? ["services.nodeports"]
        : [];
  return [own, ...extra];
}

/** What one pod with these totals takes of a quota. */
export function podUsage(totals: { requests: Totals; limits: Totals }): Totals {
  const usage: Totals = { pods: 1000 };
  for (const [r, v] of Object.entries(totals.requests)) usage[`requests.${r}`] = v;
  for (const [r, v] of Object.entries(totals.limits)) usage[`limits.${r}`] = v;
  return usage;
}

/** How many times `perUnit` fits in `hard` after `used`, for each resource of the quota. */
export function admitted(hard: ResourceList, used: Totals, perUnit: Totals): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [r, q] of Object.entries(hard)) {
    const free = milli(q) - (used[r] ?? 0);
    out[r] = perUnit[r] ? Math.floor(free / perUnit[r]) : free >= 0 ? Number.POSITIVE_INFINITY : -1;
  }
  return out;
}

// ---- NetworkPolicy ---------------------------------------------------------------------------

export interface Pod {
  namespace: string;
  labels: Record<string, string>;
  /** Container ports by name. */
  ports: Record<string, number>;
}

export function selects(selector: Obj | undefined, labels: Record<string, string>): boolean {
  if (selector?.matchExpressions?.length) throw new Error("matchExpressions are not modelled");
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/** The pods the workloads in `objects` run (a StatefulSet's with their pod-name labels). */
export function podsOf(objects: Obj[]): Pod[] {
  return objects.flatMap((o) => {
    const template = o.spec?.template;
    if (!template || !["Deployment", "StatefulSet"].includes(o.kind)) return [];
    const ports = Object.fromEntries(
      (template.spec.containers as Obj[]).flatMap((c) => (c.ports ?? []).map((p: Obj) => [p.name, p.containerPort])),
    );
    const base = { namespace: o.metadata.namespace, labels: template.metadata.labels, ports };
    if (o.kind !== "StatefulSet") return [base];
    return Array.from({ length: o.spec.replicas ?? 1 }, (_, i) => ({
      ...base,
      labels: { ...base.labels, "statefulset.kubernetes.io/pod-name": `${o.metadata.name}-${i}` },
    }));
  });
}

/** The pods behind a Service and the container port its `port` leads to on each. */
export function backends(service: Obj, pods: Pod[], port: number): { pod: Pod; port: number }[] {
  const sp = (service.spec.ports as Obj[]).find((p) => p.port === port);
  if (!sp) return [];
  return pods
    .filter(
      (p) => p.namespace === service.metadata.namespace && selects({ matchLabels: service.spec.selector }, p.labels),
    )
    .map((pod) => ({
      pod,
      port: typeof sp.targetPort === "string" ? pod.ports[sp.targetPort]! : (sp.targetPort ?? sp.port),
    }));
}

function peerMatches(peer: Obj, pod: Pod, policyNamespace: string): boolean {
  // Pod addresses are private, and every ipBlock in infra excepts the private ranges.
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, { "kubernetes.io/metadata.name": pod.namespace })
    : pod.namespace === policyNamespace;
  return namespaceOk && (!peer.podSelector || selects(peer.podSelector, pod.labels));
}

function allowedAt(policies: Obj[], pod: Pod, direction: "Ingress" | "Egress", peer: Pod, port: number): boolean {
  const selecting = policies.filter(
    (p) =>
      p.metadata.namespace === pod.namespace &&
      (p.spec.policyTypes ?? ["Ingress"]).includes(direction) &&
      selects(p.spec.podSelector, pod.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    ((direction === "Ingress" ? p.spec.ingress : p.spec.egress) ?? []).some((rule: Obj) => {
      const peers: Obj[] | undefined = direction === "Ingress" ? rule.from : rule.to;
      const portOk = !rule.ports || rule.ports.some((r: Obj) => r.port === port && (r.protocol ?? "TCP") === "TCP");
      return portOk && (!peers || peers.some((x) => peerMatches(x, peer, p.metadata.namespace)));
    }),
  );
}

/** Whether `from` may open a TCP connection to `to`'s `port` under `policies` (NetworkPolicies add up). */
export function reaches(policies: Obj[], from: Pod, to: Pod, port: number): boolean {
  return allowedAt(policies, from, "Egress", to, port) && allowedAt(policies, to, "Ingress", from, port);
}
