/**
 * infra/: every Kubernetes manifest and every object the driver generates validates against the
 * Kubernetes schemas with unknown fields refused (k8s-schema.ts); the overlays render (minimal
 * kustomize, k8s-kustomize.ts, compared with kubectl kustomize where installed) to valid objects and
 * configure core validly; the production manifests hold together (RuntimeClass, disruption budgets,
 * the repl namespace's LimitRange and quota against what the driver builds, images pinned by digest,
 * replicated Redis and its NetworkPolicies, with k8s-admission.ts); RBAC grants exactly what the
 * driver does against the fake API server; Dockerfiles and the workflow are checked for shape.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { runnerNodeFlags } from "../../../lib/contracts/runner-node-flags.mjs";
import { AddressSet, ALLOW_ALL, DENY_ALL, type EgressPolicy, PRIVATE_CIDRS } from "../../../lib/egress/policy.js";
import { targets } from "../../../scripts/build.mjs";
import { coreConfigSchema } from "../src/config.js";
import { kubernetesSettings } from "../src/driver/kubernetes/config.js";
import { EGRESS_PROXY_LABELS } from "../src/driver/kubernetes/egress-policy.js";
import {
  buildDeployment,
  buildGrpcRoute,
  buildIngress,
  buildMiddleware,
  buildPersistContainer,
  buildReplNetworkPolicy,
  buildSecret,
  buildService,
  type KubernetesDriverSettings,
  ownerReference,
  plain,
  replLabels,
  syncCommand,
} from "../src/driver/kubernetes/objects.js";
import {
  admitted,
  backends,
  limitRangeProblems,
  milli,
  type Pod,
  podsOf,
  podTotals,
  podUsage,
  quotaResources,
  reaches,
  selects,
} from "./k8s-admission.js";
import { driverFor, EGRESS_SECRET, NS, startRequest, startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { loadDocs, type Obj, render, splitImage } from "./k8s-kustomize.js";
import { validateObject } from "./k8s-schema.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const infra = join(root, "infra/k8s");
const signal = () => AbortSignal.timeout(10_000);

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith(".yaml") ? [join(dir, e.name)] : [],
  );
}

/** Complete manifests: not the patches a kustomization names (partial, validated once rendered). */
function manifestFiles() {
  const kustomizations = yamlFiles(infra).filter((f) => f.endsWith("kustomization.yaml"));
  const patches = new Set(
    kustomizations.flatMap((k) => (loadDocs(k)[0]!.patches ?? []).map((p: Obj) => join(dirname(k), p.path))),
  );
  return yamlFiles(infra).filter(
    (f) => !f.endsWith("kustomization.yaml") && !f.includes("/traefik/") && !patches.has(f),
  );
}

const overlays = ["kind", "production", "production-redis-replicated"];
/** Overlays built on the production one: every image pinned by digest. */
const pinnedOverlays = ["production", "production-redis-replicated"];
const renderOverlay = (overlay: string) => render(join(infra, "overlays", overlay));
const find = (objects: Obj[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);

/** Core's configuration as an overlay deploys it (its ConfigMap and stand-ins for its Secrets). */
function coreConfigOf(objects: Obj[]) {
  return coreConfigSchema.safeParse({
    ...find(objects, "ConfigMap", "devex-core")!.data,
    REDIS_URL: "redis://:secret@redis.devex.svc:6379/0",
    DEVEX_COOKIE_SECRET: "0123456789abcdef0123",
    DEVEX_S3_ACCESS_KEY_ID: "key",
    DEVEX_S3_SECRET_ACCESS_KEY: "secret",
    DEVEX_K8S_EGRESS_SECRET: EGRESS_SECRET,
  });
}

async function expectValid(objects: Obj[], where: string) {
  for (const o of objects) assert.deepEqual(await validateObject(o), [], `${where}: ${o.kind} ${o.metadata?.name}`);
}

describe("infra/k8s manifests", () => {
  it("every manifest validates: schemas, unknown fields, CRD structure", async () => {
    const files = manifestFiles();
    assert.ok(files.length >= 7, files.join(", "));
    for (const f of files) await expectValid(loadDocs(f), relative(root, f));
  });

  for (const overlay of overlays) {
    it(`overlay ${overlay} renders to valid objects, and its ConfigMap is a valid core configuration`, async () => {
      const objects = renderOverlay(overlay);
      await expectValid(objects, overlay);
      const byKind = (kind: string, name: string) => find(objects, kind, name)!;
      const config = byKind("ConfigMap", "devex-core").data;
      const parsed = coreConfigOf(objects);
      assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
      assert.equal(parsed.data.DEVEX_DRIVER, "kubernetes");
      const core = byKind("Deployment", "devex-core").spec.template.spec;
      assert.equal(core.serviceAccountName, "devex-core");
      assert.match(core.containers[0].image, overlay === "kind" ? /:dev$/ : /:0\.1\.0@sha256:[0-9a-f]{64}$/);
      if (overlay === "kind") {
        assert.equal(config.DEVEX_K8S_INGRESS_TLS_SECRET, undefined);
        assert.ok(!objects.some((o) => o.kind === "Certificate"));
        assert.equal(byKind("Ingress", "devex-core").spec.tls, undefined);
      }
    });
  }

  it("the renderer agrees with kustomize (kubectl kustomize, where installed), up to the order of merged lists", function () {
    const kubectl = (overlay: string) =>
      spawnSync("kubectl", ["kustomize", join(infra, "overlays", overlay)], { encoding: "utf8", timeout: 60_000 });
    if (kubectl("kind").error) this.skip();
    // kustomize puts a patch's new list items first; none of these lists depends on its order.
    const canonical = (objects: Obj[]) =>
      JSON.parse(
        JSON.stringify(objects, (_, v) =>
          Array.isArray(v) && v.every((x) => x && typeof x === "object" && "name" in x)
            ? [...v].sort((a, b) => a.name.localeCompare(b.name))
            : v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0
              ? undefined
              : v,
        ),
      ).sort((a: Obj, b: Obj) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    for (const overlay of overlays) {
      const out = kubectl(overlay);
      assert.equal(out.status, 0, out.stderr);
      const real = (yaml.loadAll(out.stdout) as Obj[]).filter(Boolean);
      assert.deepEqual(canonical(renderOverlay(overlay)), canonical(real), overlay);
    }
  });

  it("cert-manager issuers and Traefik values have what the setup relies on", async () => {
    const issuers = loadDocs(join(infra, "cert-manager/issuers.yaml"));
    assert.deepEqual(
      issuers.map((i) => i.metadata.name),
      ["letsencrypt-staging", "letsencrypt", "selfsigned"],
    );
    const values = yaml.load(readFileSync(join(infra, "traefik/values.yaml"), "utf8")) as Obj;
    assert.equal(values.providers.kubernetesCRD.enabled, true);
    assert.equal(values.providers.kubernetesIngress.enabled, true);
    assert.equal(values.ingressClass.name, "traefik");
  });

  it("NetworkPolicy: repl pods accept only Traefik and core and reach only DNS and core (the per-repl policy opens the rest); Redis accepts core and the proxy", () => {
    const policies = loadDocs(join(infra, "base/network-policies.yaml"));
    const repl = policies.find((p) => p.metadata.name === "repl-isolation")!;
    assert.deepEqual(repl.spec.podSelector.matchLabels, { "app.kubernetes.io/name": "devex-runner" });
    const sources = repl.spec.ingress.flatMap((r: Obj) => r.from);
    assert.ok(sources.every((s: Obj) => s.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] !== NS));
    const destinations = repl.spec.egress.flatMap((r: Obj) => r.to);
    assert.ok(
      destinations.every((d: Obj) => !d.ipBlock && d.podSelector),
      "no address range: deny_all must be able to close everything",
    );
    assert.deepEqual(
      destinations.map((d: Obj) => Object.values(d.podSelector.matchLabels)[0]),
      ["kube-dns", "devex-core"],
    );
    const redis = policies.find((p) => p.metadata.name === "redis-only-from-core-and-egress")!;
    assert.deepEqual(redis.spec.ingress[0].from, [
      { podSelector: { matchLabels: { "app.kubernetes.io/name": "devex-core" } } },
      { podSelector: { matchLabels: EGRESS_PROXY_LABELS } },
    ]);
  });

  it("NetworkPolicy: only repl pods reach the egress proxy, which reaches DNS, Redis and no private or link-local range", () => {
    const proxy = loadDocs(join(infra, "base/egress.yaml")).find((d) => d.kind === "NetworkPolicy")!;
    assert.deepEqual(proxy.spec.podSelector.matchLabels, EGRESS_PROXY_LABELS);
    assert.deepEqual(proxy.spec.ingress, [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NS } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "devex-runner" } },
          },
        ],
        ports: [{ port: 3128, protocol: "TCP" }],
      },
    ]);
    const blocks = proxy.spec.egress.flatMap((r: Obj) => r.to).filter((d: Obj) => d.ipBlock);
    for (const { ipBlock } of blocks) {
      const except = new AddressSet(ipBlock.except);
      for (const range of [...PRIVATE_CIDRS, "169.254.0.0/16", "fe80::/10"].filter(
        (r) => r.includes(":") === ipBlock.cidr.includes(":"),
      ))
        assert.ok(except.has(range.split("/")[0]!), `${range} is excepted from ${ipBlock.cidr}`);
      assert.ok(!except.has(ipBlock.cidr.includes(":") ? "2606:4700::1111" : "1.1.1.1"), "the internet stays open");
    }
    assert.equal(blocks.length, 2, "IPv4 and IPv6");
  });
});

/** The Kubernetes driver's settings as an overlay configures core. */
function driverSettingsOf(objects: Obj[]): KubernetesDriverSettings {
  const parsed = coreConfigOf(objects);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  return kubernetesSettings(parsed.data, testSettings().tokenPublicKeyPem);
}

/** Everything the driver creates for one repl, as sent to the API server. */
function replObjects(settings: KubernetesDriverSettings): Obj[] {
  const req = startRequest("r-bounds");
  const dep = plain(buildDeployment(settings, req, "http://core:8080"));
  dep.metadata!.uid = "0b7c1d3e-0000-4000-8000-000000000001";
  const owner = ownerReference(dep);
  return [
    dep,
    buildSecret(settings, req, owner, "token"),
    buildService(settings, req, owner),
    buildMiddleware(settings, req, owner),
    buildGrpcRoute(settings, req, owner),
    buildIngress(settings, req, owner),
    buildReplNetworkPolicy(settings, req, owner, ALLOW_ALL),
  ].map((o) => plain(o) as Obj);
}

const podSpecOf = (settings: KubernetesDriverSettings) =>
  plain(buildDeployment(settings, startRequest("r-limits"), "http://core:8080")).spec!.template.spec as Obj;
const workloads = (objects: Obj[]) => objects.filter((o) => ["Deployment", "StatefulSet"].includes(o.kind));
const containersOf = (objects: Obj[]): Obj[] =>
  workloads(objects).flatMap((w) => [
    ...(w.spec.template.spec.initContainers ?? []),
    ...w.spec.template.spec.containers,
  ]);

describe("production manifests: sandbox, disruptions, repl bounds, pinned images, replicated Redis", () => {
  it("the RuntimeClass production's core names is shipped, with gVisor's handler; kind names none", () => {
    for (const overlay of pinnedOverlays) {
      const objects = renderOverlay(overlay);
      const name = driverSettingsOf(objects).runtimeClassName;
      assert.equal(name, "gvisor");
      const runtimeClass = find(objects, "RuntimeClass", name!);
      assert.ok(runtimeClass, `${overlay}: RuntimeClass ${name} is part of the overlay`);
      assert.equal(runtimeClass.handler, "runsc");
    }
    const kind = renderOverlay("kind");
    assert.equal(driverSettingsOf(kind).runtimeClassName, undefined);
    assert.ok(!kind.some((o) => o.kind === "RuntimeClass"));
  });

  it("every PodDisruptionBudget covers one workload and lets a drain proceed; core keeps a replica in production", () => {
    for (const overlay of overlays) {
      const objects = renderOverlay(overlay);
      const budgets = objects.filter((o) => o.kind === "PodDisruptionBudget");
      assert.ok(find(objects, "PodDisruptionBudget", "devex-core"), `${overlay}: core has a PodDisruptionBudget`);
      for (const pdb of budgets) {
        const covered = workloads(objects).filter(
          (w) =>
            w.metadata.namespace === pdb.metadata.namespace &&
            selects(pdb.spec.selector, w.spec.template.metadata.labels),
        );
        const what = `${overlay}: PodDisruptionBudget ${pdb.metadata.name}`;
        assert.equal(covered.length, 1, `${what} covers exactly one workload`);
        const replicas = covered[0]!.spec.replicas ?? 1;
        const unavailable = pdb.spec.maxUnavailable ?? replicas - pdb.spec.minAvailable;
        assert.ok(unavailable >= 1, `${what} never blocks a drain`);
        if (replicas >= 2) assert.ok(replicas - unavailable >= 1, `${what} keeps a replica serving`);
      }
    }
    assert.equal(find(renderOverlay("production"), "Deployment", "devex-core")!.spec.replicas, 2);
  });

  it("replicas spread over nodes (and zones for core): each anti-affinity and spread term selects its own pods", () => {
    for (const overlay of overlays)
      for (const w of workloads(renderOverlay(overlay))) {
        const spec = w.spec.template.spec;
        const terms = [
          ...(spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map(
            (t: Obj) => t.podAffinityTerm,
          ),
          ...(spec.topologySpreadConstraints ?? []),
        ];
        for (const t of terms)
          assert.ok(selects(t.labelSelector, w.spec.template.metadata.labels), `${overlay}: ${w.metadata.name}`);
        if (w.metadata.name === "devex-core")
          assert.deepEqual(
            terms.map((t: Obj) => t.topologyKey),
            ["kubernetes.io/hostname", "topology.kubernetes.io/zone"],
          );
      }
  });

  it("every container the driver builds fits devex-repls' LimitRange (with or without the MCP sidecar); persist states no resources", () => {
    for (const overlay of overlays) {
      const objects = renderOverlay(overlay);
      const settings = driverSettingsOf(objects);
      const limitRange = find(objects, "LimitRange", "devex-repls")!;
      assert.equal(limitRange.metadata.namespace, settings.namespace);
      for (const variant of [settings, { ...settings, mcpImage: "ghcr.io/devex/mcp:1" }])
        assert.deepEqual(limitRangeProblems(limitRange, podSpecOf(variant)), [], overlay);
      // An ephemeral container may state no resources (the API server refuses them), and the
      // LimitRange does not handle pods/ephemeralcontainers: the persist container runs within the pod's.
      assert.equal(buildPersistContainer(settings, startRequest("r-limits"), "persist-1").resources, undefined);
      const cpuLimit = `${milli(settings.resources.cpuLimit) * 2}m`;
      const larger = { ...settings, resources: { ...settings.resources, cpuLimit } };
      assert.match(limitRangeProblems(limitRange, podSpecOf(larger)).join(), /container restore: cpu limit above max/);
    }
  });

  it("devex-repls' ResourceQuota counts everything the driver creates and admits as many repls as its pods", () => {
    for (const overlay of overlays) {
      const objects = renderOverlay(overlay);
      const settings = driverSettingsOf(objects);
      const { hard } = find(objects, "ResourceQuota", "devex-repls")!.spec;
      const limitRange = find(objects, "LimitRange", "devex-repls")!;
      const container = limitRange.spec.limits.find((l: Obj) => l.type === "Container");
      const overhead = settings.runtimeClassName
        ? find(objects, "RuntimeClass", settings.runtimeClassName)?.overhead?.podFixed
        : undefined;
      const [deployment, ...owned] = replObjects(settings);
      const perRepl = podUsage(podTotals(deployment!.spec.template.spec, container, overhead));
      for (const o of [deployment!, ...owned]) {
        const resources = quotaResources(o);
        assert.ok(resources.length > 0, `${o.kind} is counted`);
        for (const r of resources) perRepl[r] = (perRepl[r] ?? 0) + 1000;
      }
      for (const r of Object.keys(perRepl)) assert.ok(r in hard, `${overlay}: the quota counts ${r}`);
      // The namespace's own objects: the overlay's, the S3 Secret (README, Deploy) and the certificates' Secrets.
      const own = [
        ...objects.filter((o) => o.metadata?.namespace === settings.namespace),
        { kind: "Secret" },
        ...objects.filter((o) => o.kind === "Certificate").map(() => ({ kind: "Secret" })),
      ];
      const used: Record<string, number> = {};
      for (const r of own.flatMap(quotaResources)) used[r] = (used[r] ?? 0) + 1000;
      const repls = milli(hard.pods) / 1000;
      assert.ok(repls >= 50, `${overlay}: room for at least 50 repls`);
      for (const [r, n] of Object.entries(admitted(hard, used, perRepl)))
        assert.ok(n >= repls, `${overlay}: ${r} admits ${n} repls, fewer than the quota's ${repls} pods`);
    }
  });

  it("production overlays pin every image by digest: containers, and the runner and MCP images core starts", () => {
    for (const overlay of pinnedOverlays) {
      const objects = renderOverlay(overlay);
      const config = find(objects, "ConfigMap", "devex-core")!.data;
      const fromConfig = Object.entries(config)
        .filter(([k]) => /^DEVEX_K8S_\w+_IMAGE$/.test(k))
        .map(([, v]) => v as string);
      assert.deepEqual(fromConfig.length, 2, "runner and MCP");
      const images = [...containersOf(objects).map((c) => c.image as string), ...fromConfig];
      for (const image of images) assert.match(image, /^[^@\s]+@sha256:[0-9a-f]{64}$/, `${overlay}: ${image}`);
      const byName = new Map<string, string>();
      for (const image of images) {
        const { name } = splitImage(image);
        assert.equal(byName.get(name) ?? image, image, `${overlay}: one digest for ${name}`);
        byName.set(name, image);
      }
      for (const entry of loadDocs(join(infra, "overlays", overlay, "kustomization.yaml"))[0]!.images)
        assert.match(entry.digest, /^sha256:[0-9a-f]{64}$/, `${overlay}: ${entry.name}`);
    }
  });

  it("replicated Redis: the StatefulSet's nodes, REDIS_NODES, a Service per pod and the proxy's servers agree", () => {
    const objects = renderOverlay("production-redis-replicated");
    const redis = find(objects, "StatefulSet", "redis")!;
    const nodes = Array.from({ length: redis.spec.replicas }, (_, i) => `redis-${i}`);
    assert.equal(nodes.length, 3);
    const scripts = find(objects, "ConfigMap", "redis-replication")!.data;
    for (const c of redis.spec.template.spec.containers) {
      assert.equal(c.env.find((e: Obj) => e.name === "REDIS_NODES")?.value, nodes.join(" "), c.name);
      assert.ok(c.command[1].replace("/scripts/", "") in scripts, `${c.name} runs a script of redis-replication`);
    }
    for (const node of nodes) {
      const service = find(objects, "Service", node)!;
      assert.deepEqual(service.spec.selector, { "statefulset.kubernetes.io/pod-name": node });
      assert.equal(service.spec.publishNotReadyAddresses, true, "reachable while a node syncs");
    }
    const quorum = Number(/sentinel monitor \S+ \S+ 6379 (\d+)/.exec(scripts["sentinel.sh"])![1]);
    assert.ok(quorum > nodes.length / 2 && quorum < nodes.length, "a majority, and one Sentinel may be down");
    const haproxy = find(objects, "ConfigMap", "redis-proxy")!.data["haproxy.cfg"] as string;
    assert.deepEqual(
      [...haproxy.matchAll(/^\s*server (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]),
      nodes.map((n) => [n, `${n}.${redis.metadata.namespace}.svc.cluster.local:6379`]),
    );
    const pods = podsOf(objects);
    assert.deepEqual(
      backends(find(objects, "Service", "redis")!, pods, 6379).map((b) => b.pod.labels["app.kubernetes.io/name"]),
      ["redis-proxy"],
      "the Service in REDIS_URL leads to the proxy",
    );
  });

  it("NetworkPolicy as rendered: core and the egress proxy reach Redis (replicated: through the proxy, whose checks and the nodes' replication and Sentinel pass); repl pods reach none of it", () => {
    for (const overlay of pinnedOverlays) {
      const objects = renderOverlay(overlay);
      const policies = objects.filter((o) => o.kind === "NetworkPolicy");
      const pods = podsOf(objects);
      const named = (name: string) => pods.filter((p) => p.labels["app.kubernetes.io/name"] === name);
      const repl: Pod = { namespace: NS, labels: replLabels(startRequest("r-netpol")), ports: {} };
      const through = (service: string, port: number) => {
        const found = backends(find(objects, "Service", service)!, pods, port);
        assert.ok(found.length > 0, `${overlay}: ${service}:${port} has pods`);
        return found;
      };
      const can = (from: Pod, service: string, port: number) =>
        through(service, port).every((b) => reaches(policies, from, b.pod, b.port));
      const cannot = (from: Pod, service: string, port: number) =>
        through(service, port).every((b) => !reaches(policies, from, b.pod, b.port));
      for (const client of [...named("devex-core"), ...named("devex-egress")])
        assert.ok(can(client, "redis", 6379), `${overlay}: ${client.labels["app.kubernetes.io/name"]} → redis`);
      assert.ok(cannot(repl, "redis", 6379), `${overlay}: repl → redis`);
      if (overlay !== "production-redis-replicated") continue;
      const nodes = ["redis-0", "redis-1", "redis-2"];
      for (const node of nodes) {
        for (const proxy of named("redis-proxy")) assert.ok(can(proxy, node, 6379), `proxy → ${node}`);
        for (const port of [6379, 26379]) {
          for (const peer of named("redis")) assert.ok(can(peer, node, port), `node → ${node}:${port}`);
          assert.ok(cannot(repl, node, port), `repl → ${node}:${port}`);
        }
      }
    }
  });
});

describe("validation catches what the API server would refuse", () => {
  const dep = () => plain(buildDeployment(testSettings(), startRequest("r-neg"), "http://core:8080"));

  it("an unknown field, at the top and deep in a container", async () => {
    const a = { ...dep(), spec: { ...dep().spec, replica: 1 } };
    assert.deepEqual(await validateObject(a), ['spec.replica: unknown field "replica"']);
    const b = dep();
    b.spec!.template.spec!.containers[0] = { ...b.spec!.template.spec!.containers[0], imagePullSecret: "x" } as never;
    assert.deepEqual(await validateObject(b), [
      'spec.template.spec.containers[0].imagePullSecret: unknown field "imagePullSecret"',
    ]);
  });

  it("a bad type and a missing required field", async () => {
    const a = dep() as Obj;
    a.spec.replicas = "one";
    assert.match((await validateObject(a)).join(), /replicas must be integer/);
    const b = dep() as Obj;
    delete b.spec.template.spec.containers[0].name;
    assert.match((await validateObject(b)).join(), /must have required property name/);
  });

  it("CRDs: an unknown Middleware field, a bad type in a ClusterIssuer", async () => {
    const owner = { apiVersion: "apps/v1", kind: "Deployment", name: "d", uid: "u" };
    const mw = plain(buildMiddleware(testSettings(), startRequest("r-mw"), owner)) as Obj;
    mw.spec.stripPrefix.prefix = "/x";
    assert.deepEqual(await validateObject(mw), ['spec.stripPrefix.prefix: unknown field "prefix"']);
    const issuer = loadDocs(join(infra, "cert-manager/issuers.yaml"))[0];
    issuer.spec.acme.solvers = { http01: {} };
    assert.deepEqual(await validateObject(issuer), ["spec.acme.solvers: must be array, not object"]);
  });
});

describe("objects the Kubernetes driver generates", () => {
  const variants = {
    default: testSettings(),
    "gVisor, hostNetwork, MCP sidecar, no TLS, no S3 secret": testSettings({
      runtimeClassName: "gvisor",
      hostNetwork: true,
      mcpImage: "ghcr.io/devex/mcp:1",
      ingressTlsSecret: undefined,
      s3CredentialsSecret: undefined,
      serviceAccountName: "devex-runner",
      imagePullPolicy: undefined,
      egress: { deniedCidrs: [], storageCidrs: ["198.51.100.0/24", "10.0.0.5"] },
    }),
    "previews on an origin per repl": testSettings({ previewBaseUrl: "https://preview.example.com" }),
  };
  it("a preview base URL gives each repl's Ingress a rule for its own preview host, covered by the TLS secret", () => {
    const req = startRequest("r0123456789ab");
    const owner = { apiVersion: "apps/v1", kind: "Deployment", name: "d", uid: "u" };
    const ingress = buildIngress(testSettings({ previewBaseUrl: "https://preview.example.com" }), req, owner);
    const preview = ingress.spec!.rules![1];
    assert.equal(preview.host, `${req.replId}.preview.example.com`);
    assert.deepEqual(
      preview.http!.paths.map((p) => [p.path, p.pathType, p.backend.service!.name]),
      [["/preview/", "Prefix", ingress.metadata!.name]],
    );
    assert.deepEqual(ingress.spec!.tls![0].hosts, [new URL(testSettings().runnerBaseUrl).hostname, preview.host]);
    assert.equal(buildIngress(testSettings(), req, owner).spec!.rules!.length, 1, "none without it");
  });
  for (const [name, settings] of Object.entries(variants)) {
    it(`all validate: ${name}`, async () => {
      const req = startRequest("a-very-long-repl-name-that-goes-on-and-on-for-quite-a-while-0123", "Some.User");
      const dep = plain(buildDeployment(settings, req, "http://core:8080"));
      dep.metadata!.uid = "0b7c1d3e-0000-4000-8000-000000000000";
      const owner = ownerReference(dep);
      assert.ok(dep.metadata!.name!.length <= 63);
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { ...dep.spec!.template.spec } };
      pod.spec.ephemeralContainers = [buildPersistContainer(settings, req, "persist-1")];
      await expectValid(
        [
          dep,
          buildSecret(settings, req, owner, "token"),
          buildService(settings, req, owner),
          buildMiddleware(settings, req, owner),
          buildIngress(settings, req, owner),
          ...[
            ALLOW_ALL,
            DENY_ALL,
            { mode: "allowlist", domains: ["a.test"], cidrs: ["10.0.0.0/8", "2001:db8::/32"] },
          ].map((egress) => buildReplNetworkPolicy(settings, req, owner, egress as EgressPolicy)),
          pod,
        ].map(plain),
        name,
      );
    });
  }
});

describe("RBAC in infra grants exactly the verbs the driver uses", () => {
  it("Role devex-core-driver = the requests recorded by the fake API server over every driver path", async () => {
    const fake = await startValidatingFake();
    try {
      // Room for a loaded machine; only the start that must time out gets 300 ms.
      const driver = driverFor(fake, {}, 10_000);
      const a = startRequest("r-rbac");
      await driver.start(a, signal());
      await driver.setEgress({ replId: a.replId, runnerId: a.runnerId, egress: DENY_ALL }, signal());
      await driver.status(a.runnerId, signal());
      await driver.list(signal());
      fake.behavior.persistExitCodes.push(1);
      await assert.rejects(driver.stop({ ...a, reason: "t" }, signal()));
      fake.behavior.podWriteRaces = 1;
      await driver.start({ ...startRequest("r-rbac"), runnerId: "run-0000000000000001" }, signal()); // replaces a
      await driver.stop({ ...a, runnerId: "run-0000000000000001", reason: "t", persist: false }, signal());
      fake.behavior.neverReady = true;
      await assert.rejects(driverFor(fake, {}, 300).start(startRequest("r-rbac-timeout"), signal()));
      const used = new Set(fake.requests.map((r) => `${r.group}|${r.resource}|${r.verb}`));

      const role = loadDocs(join(infra, "base/rbac.yaml")).find((d) => d.kind === "Role")!;
      assert.equal(role.metadata.namespace, NS);
      const granted = new Set<string>();
      for (const rule of role.rules)
        for (const g of rule.apiGroups)
          for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g}|${r}|${v}`);
      assert.deepEqual([...granted].sort(), [...used].sort());
    } finally {
      await fake.close();
    }
  });
});

describe("Dockerfiles and the workflow", () => {
  const dockerfile = (name: string) => readFileSync(join(root, "infra/docker", name), "utf8");

  /** A Dockerfile's stages in order: continuation lines joined, comments dropped. */
  function stages(text: string) {
    const list: { name: string; from: string; lines: string[] }[] = [];
    for (const line of text.replace(/\\\n\s*/g, " ").split("\n")) {
      const from = /^FROM (\S+) AS (\S+)$/.exec(line);
      if (from) list.push({ from: from[1]!, name: from[2]!, lines: [] });
      else if (line && !line.startsWith("#")) list.at(-1)?.lines.push(line);
    }
    return list;
  }
  const copies = (lines: string[]) =>
    lines
      .filter((l) => l.startsWith("COPY "))
      .map((l) => {
        const args = l.split(" ").slice(1);
        const from = args[0]!.startsWith("--from=") ? args.shift()!.slice("--from=".length) : undefined;
        return { from, srcs: args.slice(0, -1), src: args[0]!, dest: args.at(-1)! };
      });

  /** Per image: the build targets (scripts/build.mjs) it ships and the data files it reads. */
  const images: Record<string, { targets: string[]; data: string[] }> = {
    "core.Dockerfile": { targets: ["core"], data: ["templates"] },
    "mcp.Dockerfile": { targets: ["mcp"], data: ["descriptors/devex.binpb"] },
    "egress.Dockerfile": { targets: ["egress"], data: [] },
    "runner.Dockerfile": { targets: ["runner", "sync"], data: [] },
  };

  it("images are multi-stage, end as a non-root user, and bundle from a scriptless install", () => {
    for (const [name, image] of Object.entries(images)) {
      const text = dockerfile(name);
      const [build, ...rest] = stages(text);
      assert.equal(build?.name, "build", `${name} starts with its build stage`);
      assert.ok(rest.length >= 1, `${name} is multi-stage`);
      assert.equal((text.match(/^USER .+$/gm) ?? []).at(-1), "USER 1000:1000", `${name} ends non-root`);
      // npm install would run the postinstall (a build of every target) before the sources are copied.
      const install = build.lines.findIndex((l) => /^RUN .*npm install --ignore-scripts/.test(l));
      const sources = build.lines.indexOf("COPY lib lib");
      assert.ok(install >= 0 && install < sources, `${name}: npm install --ignore-scripts before the sources`);
      // Built where the image runs it: source maps and the runner's code caches name these paths.
      assert.ok(build.lines.includes("WORKDIR /app"), `${name} builds in /app`);
      const run = build.lines.find((l) => l.includes("node scripts/build.mjs"));
      assert.deepEqual(
        /node scripts\/build\.mjs ([\w ]+?)(?: &&|$)/.exec(run ?? "")?.[1]?.split(" "),
        image.targets,
        name,
      );
      for (const target of image.targets) assert.ok(target in targets, `${target} is a build target`);
    }
  });

  it("final stages carry only their bundles, package.json and data: no node_modules but the runner's node-pty", () => {
    const pkg = JSON.parse(readFileSync(join(root, "infra/docker/image-package.json"), "utf8"));
    assert.equal(pkg.name, "devex", "what lib/kit/project-root.ts looks for");
    for (const [name, image] of Object.entries(images)) {
      const final = stages(dockerfile(name)).slice(1);
      const lines = final.flatMap((s) => s.lines);
      const copied = copies(lines);
      const workdir = lines.indexOf("WORKDIR /app");
      assert.ok(workdir >= 0 && workdir < lines.findIndex((l) => l.startsWith("COPY ")), `${name} fills /app`);
      assert.ok(
        copied.every((c) => c.srcs.length === 1),
        `${name}: one source per COPY in the final stages`,
      );
      assert.ok(!copied.some((c) => /(^|\/)node_modules\/?$/.test(c.src)), `${name} copies no whole node_modules`);
      const fromBuild = copied.filter((c) => c.from === "build");
      const bundles = fromBuild.filter((c) => c.src.startsWith("/app/dist/"));
      assert.deepEqual(
        bundles.map((c) => `${c.src} ${c.dest}`).sort(),
        image.targets.map((t) => `/app/dist/${t} ./dist/${t}`).sort(),
        `${name} ships exactly its bundles`,
      );
      const modules = fromBuild.filter((c) => !c.src.startsWith("/app/dist/"));
      assert.deepEqual(
        modules.map((c) => [c.src, c.dest]),
        name === "runner.Dockerfile" ? [["/app/node_modules/@lydell", "./node_modules/@lydell"]] : [],
        `${name}: of node_modules, only the native addon the runner bundle leaves outside`,
      );
      const fromContext = copied.filter((c) => !c.from).map((c) => [c.src, c.dest]);
      assert.deepEqual(
        fromContext,
        [["infra/docker/image-package.json", "./package.json"], ...image.data.map((d) => [d, `./${d}`])],
        `${name}: the minimal package.json and the data it reads`,
      );
      const cmd = lines.filter((l) => l.startsWith("CMD ")).at(-1)!;
      const entry = (JSON.parse(cmd.slice("CMD ".length)) as string[]).at(-1)!;
      const [, target, out] = /^(?:\/app\/)?dist\/(\w+)\/(\w+)\.mjs$/.exec(entry) ?? [];
      assert.ok(target && image.targets.includes(target) && out! in targets[target]!, `${name} runs ${entry}`);
    }
  });

  it("the runner image runs with the runner node flags and ships the sync CLI where the driver runs it", () => {
    const runner = dockerfile("runner.Dockerfile");
    for (const target of ["runner-base", "runner-node", "runner-python"])
      assert.match(runner, new RegExp(`AS ${target}$`, "m"));
    assert.match(runner, /^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    const cmd = runner.match(/^CMD (.+)$/m)![1]!;
    assert.deepEqual(JSON.parse(cmd), ["node", ...runnerNodeFlags, "/app/dist/runner/main.mjs"]);
    const [, , , , cli] = syncCommand("restore", { replId: "r", workspacePrefix: "repl/u/r/" });
    assert.equal(cli, "/app/dist/sync/cli.mjs");
    assert.ok("cli" in targets.sync!, "dist/sync/cli.mjs is what scripts/build.mjs writes");
    assert.match(runner, /^COPY --from=build \/app\/dist\/sync \.\/dist\/sync$/m);
  });

  it("each .dockerignore is an allowlist that lets through what its Dockerfile copies from the context", () => {
    for (const name of Object.keys(images)) {
      const patterns = dockerfile(`${name}.dockerignore`)
        .split("\n")
        .filter((l) => l && !l.startsWith("#"));
      assert.equal(patterns[0], "*", `${name}.dockerignore starts by excluding everything`);
      const allowed = patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1));
      const fromContext = copies(stages(dockerfile(name)).flatMap((s) => s.lines)).filter((c) => !c.from);
      for (const src of fromContext.flatMap((c) => c.srcs)) {
        const covered = allowed.some((p) => p === src || src.startsWith(`${p}/`) || p.startsWith(`${src}/`));
        assert.ok(covered, `${name}.dockerignore lets ${src} through`);
      }
    }
  });

  it("the kind workflow is valid YAML and runs the contract suite", () => {
    const wf = yaml.load(readFileSync(join(root, ".github/workflows/k8s-driver.yml"), "utf8")) as Obj;
    assert.ok(wf.on && wf.jobs["kind-contract"]);
    const steps = wf.jobs["kind-contract"].steps.map((s: Obj) => s.run ?? s.uses).join("\n");
    assert.match(steps, /kind create cluster/);
    assert.match(steps, /k8s-kind\.test\.ts/);
  });
});
