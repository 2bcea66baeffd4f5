/**
 * The fake API server (fake-kube-api.ts) keeps the API server's semantics that the driver relies on,
 * checked with the real @kubernetes/client-node: Status bodies and codes, label selectors,
 * resourceVersion conflicts for PUT and every PATCH content type, garbage collection by
 * ownerReferences, pod lifecycle and ephemeral containers.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from "@kubernetes/client-node";
import { type FakeKubeApi, startFakeKubeApi } from "./fake-kube-api.js";

const NS = "ns1";

function deployment(name: string, labels: Record<string, string> = { app: name }): V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          initContainers: [{ name: "init", image: "busybox" }],
          containers: [{ name: "main", image: "busybox" }],
        },
      },
    },
  };
}

async function status(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiException, String(err));
    const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
    return { code: err.code, body };
  }
  throw new Error("expected the call to fail");
}

async function eventually<T>(read: () => T | undefined, what: string): Promise<T> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
    const v = read();
    if (v) return v;
    await sleep(5);
  }
  throw new Error(`timed out: ${what}`);
}

describe("fake Kubernetes API server semantics (through the real client)", () => {
  let fake: FakeKubeApi;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  beforeEach(async () => {
    fake = await startFakeKubeApi({ namespaces: [NS] });
    apps = fake.kubeConfig().makeApiClient(AppsV1Api);
    core = fake.kubeConfig().makeApiClient(CoreV1Api);
  });
  afterEach(() => fake.close());

  it("create → 201 with uid and resourceVersion; again → 409 AlreadyExists; missing → 404 NotFound", async () => {
    const created = await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") });
    assert.ok(created.metadata?.uid && created.metadata.resourceVersion);
    const dup = await status(apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") }));
    assert.equal(dup.code, 409);
    assert.equal(dup.body.reason, "AlreadyExists");
    assert.equal(dup.body.kind, "Status");
    const missing = await status(apps.readNamespacedDeployment({ name: "nope", namespace: NS }));
    assert.deepEqual([missing.code, missing.body.reason], [404, "NotFound"]);
    const gone = await status(apps.deleteNamespacedDeployment({ name: "nope", namespace: NS }));
    assert.equal(gone.code, 404);
    const noNs = await status(apps.listNamespacedDeployment({ namespace: "other" }));
    assert.equal(noNs.body.message, 'namespaces "other" not found');
  });

  it("lists by label selector (=, ==, !=, exists, !exists)", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a", { app: "x", tier: "web" }) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("b", { app: "y" }) });
    const names = async (labelSelector: string) =>
      (await apps.listNamespacedDeployment({ namespace: NS, labelSelector })).items.map((d) => d.metadata?.name);
    assert.deepEqual(await names("app=x"), ["a"]);
    assert.deepEqual(await names("app==y"), ["b"]);
    assert.deepEqual(await names("app!=x"), ["b"]);
    assert.deepEqual(await names("tier"), ["a"]);
    assert.deepEqual(await names("!tier,app"), ["b"]);
  });

  it("a stale resourceVersion → 409 Conflict for PUT and merge/strategic patches; a failed JSON-patch test op → 422; apply → 415", async () => {
    const v1 = await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") });
    const v2 = await apps.replaceNamespacedDeployment({
      name: "a",
      namespace: NS,
      body: { ...v1, spec: { ...v1.spec!, replicas: 2 } },
    });
    assert.ok(Number(v2.metadata!.resourceVersion) > Number(v1.metadata!.resourceVersion));
    assert.equal(v2.metadata?.generation, 2);
    const stale = await status(apps.replaceNamespacedDeployment({ name: "a", namespace: NS, body: v1 }));
    assert.deepEqual([stale.code, stale.body.reason], [409, "Conflict"]);

    const staleMeta = { metadata: { resourceVersion: v1.metadata!.resourceVersion } };
    for (const type of [PatchStrategy.MergePatch, PatchStrategy.StrategicMergePatch]) {
      const r = await status(
        apps.patchNamespacedDeployment(
          { name: "a", namespace: NS, body: { ...staleMeta, spec: { replicas: 3 } } },
          setHeaderOptions("Content-Type", type),
        ),
      );
      assert.equal(r.code, 409, type);
    }
    const jsonStale = await status(
      apps.patchNamespacedDeployment(
        {
          name: "a",
          namespace: NS,
          body: [
            { op: "test", path: "/metadata/resourceVersion", value: v1.metadata!.resourceVersion },
            { op: "replace", path: "/spec/replicas", value: 3 },
          ],
        },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      ),
    );
    assert.equal(jsonStale.code, 422);

    const merged = await apps.patchNamespacedDeployment(
      {
        name: "a",
        namespace: NS,
        body: { spec: { template: { spec: { containers: [{ name: "main", image: "alpine" }] } } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    assert.equal(merged.spec?.template.spec?.containers[0].image, "alpine");
    const json = await apps.patchNamespacedDeployment(
      { name: "a", namespace: NS, body: [{ op: "replace", path: "/spec/replicas", value: 5 }] },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    );
    assert.equal(json.spec?.replicas, 5);
    const apply = await status(
      apps.patchNamespacedDeployment(
        { name: "a", namespace: NS, body: {} },
        setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
      ),
    );
    assert.equal(apply.code, 415);
  });

  it("controller and kubelet: ReplicaSet and Pod owned in a chain, init → Running → Ready; deletion cascades", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") });
    const pod = await eventually(
      () =>
        fake
          .objects("pods", NS)
          .find((p) =>
            p.status?.conditions?.some(
              (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
            ),
          ),
      "pod ready",
    );
    assert.equal(pod.status.phase, "Running");
    assert.equal(pod.status.initContainerStatuses[0].state.terminated.exitCode, 0);
    const [rs] = fake.objects("replicasets", NS);
    assert.equal(pod.metadata.ownerReferences[0].uid, rs.metadata.uid);
    assert.equal((await apps.readNamespacedDeployment({ name: "a", namespace: NS })).status?.readyReplicas, 1);

    await apps.deleteNamespacedDeployment({ name: "a", namespace: NS, propagationPolicy: "Background" });
    await eventually(() => fake.objects("replicasets", NS).length === 0 && fake.objects("pods", NS).length === 0, "GC");
  });

  it("Orphan propagation keeps dependents and strips their ownerReferences", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") });
    await eventually(() => fake.objects("replicasets", NS)[0], "rs");
    await apps.deleteNamespacedDeployment({ name: "a", namespace: NS, propagationPolicy: "Orphan" });
    await sleep(20);
    const [rs] = fake.objects("replicasets", NS);
    assert.deepEqual(rs.metadata.ownerReferences, []);
  });

  it("ephemeral containers: only they may change, never removed, no ports or resources, status waiting → running → terminated(exit code)", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("a") });
    // Ready: the kubelet is done writing the pod's status, so the reads below are not stale.
    const running = await eventually(
      () =>
        fake.objects("pods", NS).find((p) => p.status?.conditions?.some((c: { type: string }) => c.type === "Ready")),
      "ready",
    );
    const name = running.metadata.name;
    const pod = await core.readNamespacedPod({ name, namespace: NS });
    const bad = await status(
      core.replaceNamespacedPodEphemeralcontainers({
        name,
        namespace: NS,
        body: { ...pod, spec: { ...pod.spec!, containers: [{ name: "main", image: "other" }] } },
      }),
    );
    assert.equal(bad.code, 422);
    for (const field of [{ ports: [{ containerPort: 80 }] }, { resources: { limits: { cpu: "1" } } }]) {
      const forbidden = await status(
        core.replaceNamespacedPodEphemeralcontainers({
          name,
          namespace: NS,
          body: { ...pod, spec: { ...pod.spec!, ephemeralContainers: [{ name: "x", image: "busybox", ...field }] } },
        }),
      );
      assert.equal(forbidden.code, 422);
      assert.match(String(forbidden.body.message), /Forbidden: cannot be set for an Ephemeral Container/);
    }
    fake.behavior.persistExitCodes.push(3);
    // Empty values are unset to the server (Go zero values), so these are accepted.
    const debug = { name: "debug", image: "busybox", ports: [], resources: {} };
    await core.replaceNamespacedPodEphemeralcontainers({
      name,
      namespace: NS,
      body: { ...pod, spec: { ...pod.spec!, ephemeralContainers: [debug] } },
    });
    const done = await eventually(() => {
      const s = fake.objects("pods", NS)[0].status.ephemeralContainerStatuses?.[0];
      return s?.state?.terminated ? s : undefined;
    }, "terminated");
    assert.equal(done.state.terminated.exitCode, 3);
    const now = await core.readNamespacedPod({ name, namespace: NS });
    const removed = await status(
      core.replaceNamespacedPodEphemeralcontainers({
        name,
        namespace: NS,
        body: { ...now, spec: { ...now.spec!, ephemeralContainers: [] } },
      }),
    );
    assert.equal(removed.code, 422);
  });

  it("refuses a wrong bearer token with 401", async () => {
    const kc = fake.kubeConfig();
    kc.users[0] = { ...kc.users[0], token: "nope" } as never;
    const r = await status(kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: NS }));
    assert.equal(r.code, 401);
  });
});
