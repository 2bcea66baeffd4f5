/**
 * The Kubernetes driver against a real API server (lib/testing/kube-apiserver.ts: etcd, the
 * kube-apiserver and kube-controller-manager 1.20.2 built from Debian's source package by
 * scripts/kube-apiserver-build.sh), as core's own service account with the shipped Role
 * (infra/k8s/base/rbac.yaml): RBAC on, OwnerReferencesPermissionEnforcement and ResourceQuota,
 * LimitRanger and RuntimeClass admission on, the real Deployment, ReplicaSet, garbage-collector and
 * token controllers. There is no scheduler or kubelet: a loop here plays the kubelet's part for
 * pods (their status: restored, running, Ready), so starts finish; the containers never run (the
 * fake API server's local kubelet runs them, k8s-contract.e2e).
 * What this server showed the fake was taught (fake-kube-api.ts); ephemeral containers (1.25+) stay
 * on the fake.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubernetesObjectApi, type V1Pod } from "@kubernetes/client-node";
import { DomainError } from "../../../lib/kit/errors.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { kubeBinaries, type RealKube, startKubeApiServer } from "../../../lib/testing/kube-apiserver.js";
import { inCI } from "../../../lib/testing/programs.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { NS, startRequest, testSettings } from "./k8s-fixtures.js";
import { loadDocs, type Obj } from "./k8s-kustomize.js";

const infra = fileURLToPath(new URL("../../../infra/k8s", import.meta.url));
const signal = () => AbortSignal.timeout(60_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Traefik's two CRDs as the driver uses them (schemaless: the fake validates their shape). */
const traefikCrd = (kind: string, plural: string): Obj => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${plural}.traefik.io` },
  spec: {
    group: "traefik.io",
    scope: "Namespaced",
    names: { kind, plural, singular: kind.toLowerCase() },
    versions: [
      {
        name: "v1alpha1",
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
      },
    ],
  },
});

/** Plays the kubelet for repl pods: restored, running, Ready (what the driver waits for). */
function podStatusLoop(kube: RealKube): () => void {
  const core = kube.kubeConfig().makeApiClient(CoreV1Api);
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const pods = await core.listNamespacedPod({ namespace: NS }).catch(() => ({ items: [] as V1Pod[] }));
      for (const pod of pods.items) {
        if (pod.metadata?.deletionTimestamp || pod.status?.conditions?.some((c) => c.type === "Ready")) continue;
        const now = new Date();
        const status = {
          phase: "Running",
          podIP: "10.244.0.9",
          conditions: [
            { type: "Initialized", status: "True", lastTransitionTime: now },
            { type: "Ready", status: "True", lastTransitionTime: now },
          ],
          initContainerStatuses: (pod.spec?.initContainers ?? []).map((c) => ({
            name: c.name,
            image: c.image ?? "",
            imageID: "",
            ready: true,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: "Completed" } },
          })),
          containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
            name: c.name,
            image: c.image ?? "",
            imageID: "",
            ready: true,
            restartCount: 0,
            started: true,
            state: { running: { startedAt: now } },
          })),
        };
        await core
          .replaceNamespacedPodStatus({
            name: pod.metadata!.name!,
            namespace: NS,
            body: { ...pod, status } as V1Pod,
          })
          .catch(() => {});
      }
      await sleep(100);
    }
  })();
  return () => {
    stopped = true;
  };
}

describe("Kubernetes driver against a real API server (1.20)", function () {
  this.timeout(180_000);
  let kube: RealKube;
  let admin: KubernetesObjectApi;
  let coreToken: string;
  let stopLoop = () => {};
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const driverAs = (o: { token?: string; readyTimeoutMs?: number; ephemeral?: boolean; runtimeClass?: string } = {}) =>
    createKubernetesDriver({
      apis: kubernetesApis(kube.kubeConfig(o.token ?? coreToken)),
      settings: testSettings({
        tokenPublicKeyPem: signer.publicKeyPem,
        persist: { mode: o.ephemeral ? "ephemeral" : "sidecar", intervalSeconds: 60 },
        serviceAccountName: "devex-runner",
        runtimeClassName: o.runtimeClass,
      }),
      pollIntervalMs: 100,
      readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
      persistTimeoutMs: 10_000,
      signer,
    });

  before(async function () {
    const bin = kubeBinaries();
    if (!bin) {
      const why = "the Kubernetes control plane is not built (scripts/kube-apiserver-build.sh)";
      if (inCI) throw new Error(`required program missing under CI: ${why}`);
      console.warn(`      skipped: ${why}`);
      this.skip();
    }
    kube = await startKubeApiServer(bin!);
    admin = KubernetesObjectApi.makeApiClient(kube.kubeConfig());
    for (const o of [
      ...loadDocs(join(infra, "base/namespaces.yaml")),
      ...loadDocs(join(infra, "base/rbac.yaml")),
      traefikCrd("Middleware", "middlewares"),
      traefikCrd("IngressRoute", "ingressroutes"),
    ]) {
      await admin.create(o as never);
    }
    // The token controller makes the service account's token Secret (1.20 still does).
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    for (const deadline = Date.now() + 30_000; !coreToken; await sleep(200)) {
      assert.ok(Date.now() < deadline, "no token Secret for devex-core");
      const secrets = await core.listNamespacedSecret({ namespace: "devex" });
      const s = secrets.items.find(
        (x) =>
          x.type === "kubernetes.io/service-account-token" &&
          x.metadata?.annotations?.["kubernetes.io/service-account.name"] === "devex-core",
      );
      if (s?.data?.token) coreToken = Buffer.from(s.data.token, "base64").toString();
    }
    stopLoop = podStatusLoop(kube);
  });
  after(async () => {
    stopLoop();
    await kube?.close();
  });

  it("runs the driver's every path as core's service account with the shipped Role, and garbage collection takes what a Deployment owned", async () => {
    const driver = driverAs();
    const req = startRequest("r-real");
    const started = await driver.start(req, signal());
    assert.equal(started.runnerId, req.runnerId);
    assert.equal(await driver.status(req.runnerId, signal()), "running");
    assert.deepEqual(
      (await driver.list(signal())).map((r) => r.replId),
      ["r-real"],
    );
    await driver.setEgress(
      { replId: req.replId, runnerId: req.runnerId, egress: { mode: "deny_all" } as never },
      signal(),
    );
    // Owned objects, with owner references that OwnerReferencesPermissionEnforcement let through.
    const owned = async () => {
      const names: string[] = [];
      for (const [apiVersion, kind] of [
        ["v1", "Secret"],
        ["v1", "Service"],
        ["networking.k8s.io/v1", "NetworkPolicy"],
        ["networking.k8s.io/v1", "Ingress"],
        ["traefik.io/v1alpha1", "Middleware"],
        ["traefik.io/v1alpha1", "IngressRoute"],
      ]) {
        const list = await admin.list(apiVersion!, kind!, NS);
        for (const o of list.items) if (o.metadata?.ownerReferences?.length) names.push(`${kind}/${o.metadata.name}`);
      }
      return names.sort();
    };
    assert.equal((await owned()).length, 6, String(await owned()));
    await driver.stop({ ...req, reason: "t", persist: false }, signal());
    for (const deadline = Date.now() + 30_000; (await owned()).length > 0; await sleep(200)) {
      assert.ok(Date.now() < deadline, `not collected: ${await owned()}`);
    }
  });

  it("the shipped Role gives core nothing more: other verbs, resources and namespaces are Forbidden", async () => {
    const asCore = KubernetesObjectApi.makeApiClient(kube.kubeConfig(coreToken));
    const forbidden = async (what: string, call: () => Promise<unknown>) => {
      await assert.rejects(call(), (err: { code?: number }) => err.code === 403, what);
    };
    await forbidden("list secrets", () => asCore.list("v1", "Secret", NS));
    await forbidden("list services", () => asCore.list("v1", "Service", NS));
    await forbidden("list deployments in devex", () => asCore.list("apps/v1", "Deployment", "devex"));
    await forbidden("create a Role", () =>
      asCore.create({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "x", namespace: NS },
      } as never),
    );
    await forbidden("create a ConfigMap", () =>
      asCore.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: NS } } as never),
    );
  });

  it("a pod the cluster refuses fails the start within 5 s, saying why, and leaves nothing", async () => {
    const cases: Array<[string, Obj | undefined, { runtimeClass?: string }, RegExp]> = [
      [
        "ResourceQuota",
        {
          apiVersion: "v1",
          kind: "ResourceQuota",
          metadata: { name: "none", namespace: NS },
          spec: { hard: { pods: "0" } },
        },
        {},
        /ResourceQuota is used up/,
      ],
      [
        "LimitRange",
        {
          apiVersion: "v1",
          kind: "LimitRange",
          metadata: { name: "small", namespace: NS },
          spec: { limits: [{ type: "Container", max: { memory: "64Mi" } }] },
        },
        {},
        /LimitRange/,
      ],
      ["RuntimeClass", undefined, { runtimeClass: "gvisor" }, /RuntimeClass does not exist/],
    ];
    for (const [name, object, options, why] of cases) {
      if (object) await admin.create(object as never);
      try {
        // Quota status takes the controller a moment; the refusal is the API server's all the same.
        await sleep(name === "ResourceQuota" ? 1500 : 0);
        const driver = driverAs(options);
        const startedAt = Date.now();
        await assert.rejects(
          driver.start(startRequest(`r-refused-${name.toLowerCase()}`), signal()),
          (err: unknown) => {
            assert.ok(err instanceof DomainError && err.kind === "failed-precondition", `${name}: ${err}`);
            assert.match(err.message, /refused to create the runner's pod .*\(FailedCreate: /, name);
            assert.match(err.message, why, name);
            return true;
          },
        );
        assert.ok(Date.now() - startedAt < 5000, `${name}: ${Date.now() - startedAt} ms`);
        const left = await admin.list("apps/v1", "Deployment", NS);
        assert.deepEqual(
          left.items.map((d) => d.metadata?.name),
          [],
          `${name}: the Deployment is deleted again`,
        );
      } finally {
        if (object) await admin.delete(object as never);
      }
    }
  });

  it("its version (1.20) serves the persist sidecar, and is refused for ephemeral persist containers by name", async () => {
    await assert.rejects(driverAs({ ephemeral: true }).start(startRequest("r-old"), signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "failed-precondition");
      assert.match(
        err.message,
        /the Kubernetes API server is v1\.20\.\d+[^;]*; Devex needs 1\.25 or later with DEVEX_K8S_PERSIST=ephemeral/,
      );
      return true;
    });
  });
});
