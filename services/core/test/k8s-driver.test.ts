/**
 * The Kubernetes driver with the real @kubernetes/client-node against the fake API server
 * (fake-kube-api.ts — a fake of the API server, not Kubernetes). Every object the driver sends is
 * validated by the fake with the Kubernetes schemas and unknown-field rejection (k8s-schema.ts).
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { ApiException } from "@kubernetes/client-node";
import { DomainError } from "../../../lib/kit/errors.js";
import { createTokenSigner, createTokenVerifier, generateSigningKey } from "../../../lib/kit/tokens.js";
import type { Driver } from "../src/driver/driver.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { kubeError } from "../src/driver/kubernetes/errors.js";
import type { FakeKubeApi, KubeObject } from "./fake-kube-api.js";
import { driverFor, NS, startRequest, startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { loadDocs } from "./k8s-kustomize.js";

const infra = fileURLToPath(new URL("../../../infra/k8s", import.meta.url));

const signal = () => AbortSignal.timeout(10_000);
const resources = [
  "deployments",
  "replicasets",
  "pods",
  "secrets",
  "services",
  "ingresses",
  "middlewares",
  "ingressroutes",
  "networkpolicies",
];

/** Objects the driver made (the seeded S3 Secret is not one). */
const count = (fake: FakeKubeApi) =>
  Object.fromEntries(
    resources.map((r) => [
      r,
      fake.objects(r, NS).filter((o) => o.metadata.labels?.["app.kubernetes.io/managed-by"] === "devex").length,
    ]),
  );
const none = Object.fromEntries(resources.map((r) => [r, 0]));

async function eventually(check: () => boolean, what: string) {
  const deadline = Date.now() + 5000;
  while (!check() && Date.now() < deadline) await sleep(5);
  assert.ok(check(), what);
}

describe("Kubernetes driver against the fake API server", () => {
  let fake: FakeKubeApi;
  let driver: Driver;

  beforeEach(async () => {
    fake = await startValidatingFake();
    driver = driverFor(fake);
  });
  afterEach(() => fake.close());

  it("start creates the Deployment and its owned NetworkPolicy, Secret, Service, Middleware and Ingress, labelled, and waits for readiness", async () => {
    const req = startRequest("r-start", "alice");
    let restoreSeen = () => {};
    fake.behavior.restoreGate = new Promise<void>((resolve) => {
      restoreSeen = resolve;
    });
    const phases: string[] = [];
    const started = await driver.start(req, signal(), (p) => {
      phases.push(p.phase);
      if (p.phase === "restore") restoreSeen();
    });
    assert.deepEqual(started, { runnerId: req.runnerId, url: "https://repl.devex.test/r-start" });
    // "start" (restored, not yet Ready) shows only if a poll lands in between.
    assert.deepEqual(phases.slice(0, 2), ["schedule", "restore"]);
    assert.ok(phases.slice(2).every((p) => p === "start"));

    const [dep] = fake.objects("deployments", NS);
    const labels = {
      "app.kubernetes.io/managed-by": "devex",
      "app.kubernetes.io/name": "devex-runner",
      "devex.dev/repl-id": "r-start",
      "devex.dev/user": "alice",
      "devex.dev/runner-id": req.runnerId,
    };
    assert.equal(dep.metadata.name, "devex-r-start");
    assert.deepEqual(dep.metadata.labels, labels);
    assert.equal(dep.spec.replicas, 1);
    const pod = dep.spec.template.spec;
    assert.deepEqual(pod.initContainers[0].command, [
      "sh",
      "-c",
      'exec "$0" "$@" > /dev/termination-log',
      "node",
      "/app/dist/sync/cli.mjs",
      "restore",
      "--dir",
      "/workspaces/r-start",
      "--prefix",
      "repl/alice/r-start/",
      "--manifest",
      "/var/lib/devex-sync/manifest.json",
    ]);
    assert.equal(pod.containers[0].name, "runner");
    const env = Object.fromEntries(pod.containers[0].env.map((e: KubeObject) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.DEVEX_REPL_ID, "r-start");
    assert.equal(env.DEVEX_RUNNER_WORKSPACE, "/workspace", "the project's path is the same on every driver");
    assert.equal(env.DEVEX_RUNNER_HOME, "/home/devex");
    assert.equal(env.DEVEX_TRUST_PROXY, "true", "clients come through the ingress: their address is X-Forwarded-For's");
    assert.equal(pod.hostname, "r-start", "the repl's id is its hostname");
    assert.deepEqual(
      pod.containers[0].volumeMounts.find((m: KubeObject) => m.name === "workspaces"),
      { name: "workspaces", mountPath: "/workspace", subPath: "r-start" },
      "the runner sees only its own folder of the volume",
    );
    assert.equal(env.DEVEX_RUNNER_ID, req.runnerId);
    assert.deepEqual(env.DEVEX_RUNNER_CONTROL_TOKEN, { secretKeyRef: { name: "devex-r-start", key: "control-token" } });
    assert.ok(!JSON.stringify(dep).includes(req.controlToken), "the control token is not in the Deployment");
    for (const c of [...pod.initContainers, ...pod.containers]) {
      assert.equal(c.securityContext.runAsNonRoot, true);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
      assert.equal(c.securityContext.seccompProfile.type, "RuntimeDefault");
      assert.ok(c.resources.limits.memory && c.resources.requests.cpu);
    }
    assert.deepEqual(pod.volumes[0], { name: "workspaces", emptyDir: { sizeLimit: "2Gi" } });

    const owner = { apiVersion: "apps/v1", kind: "Deployment", name: "devex-r-start", uid: dep.metadata.uid };
    for (const r of ["secrets", "services", "middlewares", "ingresses", "ingressroutes", "networkpolicies"]) {
      const [obj] = fake.objects(r, NS).filter((o) => o.metadata.name !== "devex-s3");
      assert.equal(obj.metadata.name, "devex-r-start", r);
      assert.deepEqual(obj.metadata.labels, labels, r);
      assert.deepEqual(obj.metadata.ownerReferences, [{ ...owner, controller: true }], r);
    }
    const secret = fake.objects("secrets", NS).find((o) => o.metadata.name === "devex-r-start")!;
    assert.equal(Buffer.from(secret.data["control-token"], "base64").toString(), req.controlToken);
    const [ingress] = fake.objects("ingresses", NS);
    assert.equal(ingress.spec.ingressClassName, "traefik");
    assert.deepEqual(ingress.spec.rules[0], {
      host: "repl.devex.test",
      http: {
        paths: [
          {
            path: "/r-start",
            pathType: "Prefix",
            backend: { service: { name: "devex-r-start", port: { name: "http" } } },
          },
        ],
      },
    });
    assert.equal(
      ingress.metadata.annotations["traefik.ingress.kubernetes.io/router.middlewares"],
      `${NS}-devex-r-start@kubernetescrd`,
    );
    const [mw] = fake.objects("middlewares", NS);
    assert.deepEqual(mw.spec, { stripPrefix: { prefixes: ["/r-start"] } });
    // HTTP/2 end to end for gRPC and Connect streams (by path prefix) and for the devex-repl-id header.
    const [route] = fake.objects("ingressroutes", NS);
    const h2c = [{ name: "devex-r-start", port: "http", scheme: "h2c" }];
    assert.deepEqual(route.spec.routes, [
      {
        kind: "Rule",
        match:
          "Host(`repl.devex.test`) && PathPrefix(`/r-start/`) && HeaderRegexp(`Content-Type`, `^application/(grpc|connect\\+)`)",
        priority: 1000,
        middlewares: [{ name: "devex-r-start" }],
        services: h2c,
      },
      {
        kind: "Rule",
        match: "Host(`repl.devex.test`) && Header(`Devex-Repl-Id`, `r-start`)",
        priority: 1001,
        services: h2c,
      },
    ]);

    assert.equal(await driver.status(req.runnerId, signal()), "running");
    assert.deepEqual(await driver.list(signal()), [
      { runnerId: req.runnerId, replId: "r-start", url: "https://repl.devex.test/r-start" },
    ]);
  });

  it("a pod that never becomes ready fails start with a clear DeadlineExceeded and leaves nothing behind", async () => {
    fake.behavior.neverReady = true;
    driver = driverFor(fake, {}, 1000);
    const req = startRequest("r-slow");
    await assert.rejects(driver.start(req, signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "deadline-exceeded", String(err));
      assert.match(
        err.message,
        /the runner of repl r-slow was not ready within 1 s \(pod Running, restore exited 0, runner running\)/,
      );
      return true;
    });
    await eventually(() => count(fake).pods === 0 && count(fake).deployments === 0, "everything deleted");
    assert.deepEqual(count(fake), none);
    assert.equal(await driver.status(req.runnerId, signal()), "stopped");
  });

  it("an image that cannot be pulled is named in the timeout error", async () => {
    fake.behavior.imagePullFails = true;
    driver = driverFor(fake, {}, 1000);
    await assert.rejects(driver.start(startRequest("r-pull"), signal()), /restore ImagePullBackOff/);
  });

  it("a failed restore fails start at once with the init container's message, and cleans up", async () => {
    fake.behavior.restoreExitCode = 1;
    fake.behavior.restoreMessage = "restore failed: the bucket devex does not exist";
    driver = driverFor(fake, {}, 30_000);
    const started = Date.now();
    await assert.rejects(driver.start(startRequest("r-restore"), signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "unavailable");
      assert.equal(
        err.message,
        "restoring the workspace of repl r-restore failed (exit code 1: restore failed: the bucket devex does not exist)",
      );
      return true;
    });
    assert.ok(Date.now() - started < 15_000, "did not wait for the 30 s readiness timeout");
    await eventually(() => count(fake).deployments === 0 && count(fake).pods === 0, "cleaned up");
  });

  it("stop injects the persist container, waits for exit 0, and only then deletes (everything cascades)", async () => {
    const req = startRequest("r-stop", "bob");
    await driver.start(req, signal());
    fake.requests.length = 0;
    const phases: string[] = [];
    const result = await driver.stop({ ...req, reason: "user" }, signal(), (p) => phases.push(p.phase));
    assert.ok(result.persistTime > Date.now() - 5000);
    assert.deepEqual(phases, ["persist", "teardown"]);

    const writes = fake.requests.filter((r) => r.verb !== "get" && r.verb !== "list");
    assert.deepEqual(
      writes.map((r) => `${r.verb} ${r.resource}`),
      ["update pods/ephemeralcontainers", "delete deployments"],
    );
    const inject = fake.requests.findIndex((r) => r.resource === "pods/ephemeralcontainers");
    const polls = fake.requests.slice(inject + 1).filter((r) => r.verb === "get" && r.resource === "pods");
    assert.ok(polls.length >= 1, "polled the ephemeral container's status before deleting");
    await eventually(() => JSON.stringify(count(fake)) === JSON.stringify(none), "all objects garbage-collected");
    assert.equal(await driver.status(req.runnerId, signal()), "stopped");
  });

  it("the persist container runs lib/sync persist on the pod's /workspaces volume", async () => {
    const req = startRequest("r-eph", "carol");
    await driver.start(req, signal());
    fake.behavior.persistMs = 100;
    const stopping = driver.stop({ ...req, reason: "user" }, signal());
    await eventually(() => fake.objects("pods", NS)[0]?.spec.ephemeralContainers?.length === 1, "injected");
    const [pod] = fake.objects("pods", NS);
    const [eph] = pod.spec.ephemeralContainers;
    assert.match(eph.name, /^persist-/);
    assert.deepEqual(eph.command.slice(5), [
      "persist",
      "--dir",
      "/workspaces/r-eph",
      "--prefix",
      "repl/carol/r-eph/",
      "--manifest",
      "/var/lib/devex-sync/manifest.json",
    ]);
    assert.deepEqual(
      eph.volumeMounts.map((m: KubeObject) => m.name),
      ["workspaces", "home", "sync-state", "tmp"],
    );
    assert.deepEqual(eph.envFrom, [{ secretRef: { name: "devex-s3" } }]);
    assert.equal(count(fake).deployments, 1, "nothing deleted while the upload runs");
    await stopping;
  });

  it("a failed upload deletes nothing and surfaces on Stop; a later Stop succeeds and then deletes", async () => {
    const req = startRequest("r-fail");
    await driver.start(req, signal());
    const before = count(fake);
    fake.behavior.persistExitCodes.push(1);
    fake.behavior.persistMessage = "persist failed: connect ECONNREFUSED s3.internal:443";
    fake.requests.length = 0;

    await assert.rejects(driver.stop({ ...req, reason: "user" }, signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "unavailable");
      assert.equal(
        err.message,
        "persisting the workspace of repl r-fail failed (exit code 1: persist failed: connect ECONNREFUSED s3.internal:443); the runner keeps running and nothing was deleted — stop again to retry",
      );
      return true;
    });
    assert.ok(!fake.requests.some((r) => r.verb === "delete"), "no delete request was sent");
    assert.deepEqual(count(fake), before);
    assert.equal(await driver.status(req.runnerId, signal()), "running");
    // A checkpoint's persist failing the same way says to try again, not to stop again.
    fake.behavior.persistExitCodes.push(1);
    await assert.rejects(driver.persist(req, signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "unavailable");
      assert.match(
        err.message,
        /failed \(exit code 1: .*\); the runner keeps running and nothing was changed — try again$/,
      );
      return true;
    });

    await driver.stop({ ...req, reason: "user" }, signal());
    const [first, second] = fake.requests.filter((r) => r.resource === "pods/ephemeralcontainers");
    assert.ok(first && second, "a fresh container was injected for the retry");
    const deletes = fake.requests.filter((r) => r.verb === "delete");
    assert.deepEqual(
      deletes.map((r) => `${r.resource}/${r.name}`),
      ["deployments/devex-r-fail"],
    );
    assert.ok(fake.requests.indexOf(deletes[0]) > fake.requests.lastIndexOf(second));
    await eventually(
      () => JSON.stringify(count(fake)) === JSON.stringify(none),
      "deleted after the successful persist",
    );
  });

  it("a persist that timed out is waited for before the next stop uploads again (never two at once)", async () => {
    const req = startRequest("r-overlap");
    await driver.start(req, signal());
    fake.behavior.persistMs = 600;
    const impatient = createKubernetesDriver({
      apis: kubernetesApis(fake.kubeConfig()),
      settings: testSettings(),
      pollIntervalMs: 5,
      persistTimeoutMs: 100,
    });
    await assert.rejects(
      impatient.stop({ ...req, reason: "user" }, signal()),
      /persisting the workspace of repl r-overlap did not finish within 100 ms \(running\); nothing was deleted/,
    );
    assert.equal(count(fake).deployments, 1);
    fake.behavior.persistMs = 10;
    const began = Date.now();
    await driver.stop({ ...req, reason: "user" }, signal());
    // The first upload had about 500 ms left; the second stop waited for it before injecting its own.
    assert.ok(Date.now() - began >= 300, `${Date.now() - began} ms`);
    assert.equal(count(fake).deployments, 0);
    const injections = fake.requests.filter((r) => r.resource === "pods/ephemeralcontainers" && r.code === 200);
    assert.equal(injections.length, 2);
  });

  it("a concurrent pod update (stale resourceVersion → 409 Conflict) makes the injection re-read and retry", async () => {
    const req = startRequest("r-conflict");
    await driver.start(req, signal());
    const [pod] = fake.objects("pods", NS);
    // The kubelet updates the pod's status between the driver's read and its write.
    const original = pod.metadata.resourceVersion;
    fake.setPodReady(NS, pod.metadata.name, true);
    assert.notEqual(fake.objects("pods", NS)[0].metadata.resourceVersion, original);
    const apis = kubernetesApis(fake.kubeConfig());
    await assert.rejects(
      apis.core.replaceNamespacedPodEphemeralcontainers({
        name: pod.metadata.name,
        namespace: NS,
        body: { ...pod, spec: { ...pod.spec, ephemeralContainers: [{ name: "x", image: "busybox" }] } },
      }),
      (err: unknown) => err instanceof ApiException && err.code === 409,
    );
    fake.behavior.podWriteRaces = 2;
    fake.requests.length = 0;
    await driver.stop({ ...req, reason: "user" }, signal());
    assert.deepEqual(
      fake.requests
        .filter((r) => r.resource === "pods/ephemeralcontainers" || r.verb === "get")
        .map((r) => r.verb)
        .slice(0, 5),
      ["update", "get", "update", "get", "update"],
    );
  });

  it("persist: false (repl deleted) tears down without a persist container; stopping an unknown runner succeeds", async () => {
    const req = startRequest("r-gone");
    await driver.start(req, signal());
    fake.requests.length = 0;
    await driver.stop({ ...req, reason: "repl deleted", persist: false }, signal());
    assert.ok(!fake.requests.some((r) => r.resource === "pods/ephemeralcontainers"));
    assert.equal(await driver.status(req.runnerId, signal()), "stopped");
    fake.requests.length = 0;
    await driver.stop({ ...startRequest("r-never"), reason: "reconcile" }, signal());
    assert.deepEqual(
      fake.requests.map((r) => `${r.verb} ${r.resource}`),
      ["list deployments", "list pods"],
    );
  });

  it("a stop returns only once the runner's pod is gone, so its sidecar uploads nothing after", async () => {
    fake.behavior.podTerminationMs = 700;
    const req = startRequest("r-terminating");
    await driver.start(req, signal());
    const began = Date.now();
    await driver.stop({ ...req, reason: "repl deleted", persist: false }, signal());
    assert.ok(Date.now() - began >= 600, `returned after ${Date.now() - began} ms, with the pod terminating`);
    assert.deepEqual(fake.objects("pods", NS), []);
    // A stop of a runner whose Deployment is gone still waits for a pod left terminating.
    const again = startRequest("r-terminating-2");
    await driver.start(again, signal());
    const [deployment] = fake.objects("deployments", NS).filter((d) => d.metadata.name.includes("terminating-2"));
    await kubernetesApis(fake.kubeConfig()).apps.deleteNamespacedDeployment({
      name: deployment.metadata.name,
      namespace: NS,
    });
    await driver.stop({ ...again, reason: "reconcile", persist: false }, signal());
    assert.deepEqual(fake.objects("pods", NS), []);
  });

  it("a pod whose restore never finished is deleted without persisting (the blob store is newer)", async () => {
    fake.behavior.restoreMs = 5000;
    driver = driverFor(fake, {}, 5000);
    const req = startRequest("r-half");
    const ac = new AbortController();
    const starting = driver.start(req, ac.signal);
    await eventually(() => fake.objects("pods", NS).length === 1, "pod created");
    // Core crashed mid-start: reconciliation later stops this runner.
    const other = driverFor(fake);
    await other.stop({ ...req, reason: "runner no longer belongs to its repl" }, signal());
    assert.ok(!fake.requests.some((r) => r.resource === "pods/ephemeralcontainers"));
    ac.abort();
    await assert.rejects(starting);
  });

  it("start replaces an older runner of the same repl, persisting it first", async () => {
    const old = startRequest("r-twice");
    await driver.start(old, signal());
    const next = { ...startRequest("r-twice"), runnerId: "run-ffffffffffffffff" };
    fake.requests.length = 0;
    await driver.start(next, signal());
    const seq = fake.requests
      .filter((r) => r.verb !== "get" && r.verb !== "list")
      .map((r) => `${r.verb} ${r.resource}`);
    assert.deepEqual(seq.slice(0, 3), ["create deployments", "update pods/ephemeralcontainers", "delete deployments"]);
    assert.deepEqual(
      (await driver.list(signal())).map((r) => r.runnerId),
      ["run-ffffffffffffffff"],
    );
  });

  it("aborting start cancels the wait and deletes what was created", async () => {
    fake.behavior.neverReady = true;
    driver = driverFor(fake, {}, 5000);
    const ac = new AbortController();
    const starting = driver.start(startRequest("r-abort"), ac.signal);
    await eventually(() => fake.objects("pods", NS).length === 1, "pod created");
    ac.abort();
    await assert.rejects(starting, (err: Error) => err.name === "AbortError");
    await eventually(() => count(fake).deployments === 0, "deleted");
  });

  it("options: runtimeClassName, hostNetwork, MCP sidecar and no TLS", async () => {
    driver = driverFor(fake, {
      runtimeClassName: "gvisor",
      hostNetwork: true,
      mcpImage: "ghcr.io/devex/mcp:test",
      ingressTlsSecret: undefined,
    });
    await driver.start(startRequest("r-opts"), signal());
    const [dep] = fake.objects("deployments", NS);
    const spec = dep.spec.template.spec;
    assert.equal(spec.runtimeClassName, "gvisor");
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, "ClusterFirstWithHostNet");
    assert.deepEqual(
      spec.containers.map((c: KubeObject) => c.name),
      ["runner", "mcp"],
    );
    const [svc] = fake.objects("services", NS);
    assert.deepEqual(
      svc.spec.ports.map((p: KubeObject) => p.name),
      ["http", "mcp"],
    );
    assert.equal(fake.objects("ingresses", NS)[0].spec.tls, undefined);
  });

  it("persist sidecar: its own container holds the credentials, reads the trees read-only; stop asks it with core's token", async () => {
    const signer = createTokenSigner(generateSigningKey().privateKeyPem);
    const asked: string[] = [];
    let answer = 500;
    const sidecar = createServer((req, res) => {
      asked.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(answer, { "content-type": "application/json" }).end(JSON.stringify({ files: 3, transferred: 1 }));
    });
    await new Promise<void>((r) => sidecar.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(sidecar.address() as AddressInfo).port}`;
      driver = createKubernetesDriver({
        apis: kubernetesApis(fake.kubeConfig()),
        settings: testSettings({
          tokenPublicKeyPem: signer.publicKeyPem,
          persist: { mode: "sidecar", intervalSeconds: 120 },
        }),
        pollIntervalMs: 5,
        signer,
        persistUrl: () => url,
      });
      const req = startRequest("r-sidecar");
      await driver.start(req, signal());
      const spec = fake.objects("deployments", NS)[0].spec.template.spec;
      const [runner, persist] = spec.containers;
      assert.equal(persist.name, "persist");
      assert.deepEqual(persist.command.slice(0, 3), ["node", "/app/dist/sync/cli.mjs", "serve"]);
      assert.deepEqual(persist.command.slice(-4), ["--interval", "120", "--port", "8092"]);
      assert.deepEqual(persist.envFrom, [{ secretRef: { name: "devex-s3" } }]);
      assert.equal(runner.envFrom, undefined, "the repl's own container never gets the blob store's credentials");
      const mounts = Object.fromEntries(persist.volumeMounts.map((m: KubeObject) => [m.name, m.readOnly ?? false]));
      assert.deepEqual(mounts, { workspaces: true, home: true, "sync-state": false, tmp: false });

      // A failed persist deletes nothing; a good one is asked once more, then the Deployment goes.
      await assert.rejects(driver.stop({ ...req, reason: "t" }, signal()), /failed \(HTTP 500\).*nothing was deleted/);
      assert.equal(fake.objects("deployments", NS).length, 1);
      answer = 200;
      await driver.stop({ ...req, reason: "t" }, signal());
      assert.equal(asked.length, 2);
      for (const line of asked) {
        const [method, path, , token] = line.split(" ");
        assert.deepEqual([method, path], ["POST", "/persist"]);
        const claims = createTokenVerifier(signer.publicKeyPem).verify(token!, {
          aud: "runner-admin",
          repl: "r-sidecar",
        });
        assert.ok(claims.exp - claims.iat <= 600);
      }
      await eventually(() => fake.objects("deployments", NS).length === 0, "deleted after the persist");
    } finally {
      sidecar.closeAllConnections();
      sidecar.close();
    }
  });
});

describe("Kubernetes driver: cluster problems become actionable errors", () => {
  it("a missing namespace → FailedPrecondition naming it", async () => {
    const fake = await startValidatingFake({ namespaces: ["other"] });
    try {
      await assert.rejects(driverFor(fake).start(startRequest(), signal()), (err: unknown) => {
        assert.ok(err instanceof DomainError && err.kind === "failed-precondition");
        assert.equal(
          err.message,
          'cannot create deployments in namespace "devex-repls": the namespace or object does not exist (create infra/k8s first)',
        );
        return true;
      });
    } finally {
      await fake.close();
    }
  });

  it("Traefik's CRD missing → FailedPrecondition, and the Deployment is deleted again", async () => {
    const fake = await startValidatingFake({ traefik: false });
    try {
      await assert.rejects(
        driverFor(fake).start(startRequest(), signal()),
        /Traefik's Middleware CRD \(traefik.io\/v1alpha1\) is missing/,
      );
      await eventually(
        () => fake.objects("deployments", NS).length === 0 && fake.objects("services", NS).length === 0,
        "cleaned",
      );
    } finally {
      await fake.close();
    }
  });

  it("403, 422, 409 and 5xx map to actionable errors without the API server's message", () => {
    const api = (code: number, reason: string, message: string, causes: { field: string }[] = []) =>
      new ApiException(code, "x", JSON.stringify({ kind: "Status", code, reason, message, details: { causes } }), {});
    const cases: [ApiException<string>, string, string][] = [
      [
        api(
          403,
          "Forbidden",
          'deployments.apps is forbidden: User "system:serviceaccount:devex:devex-core" cannot create resource "deployments" in API group "apps" in the namespace "devex-repls"',
        ),
        "failed-precondition",
        'core\'s service account may not create deployments in namespace "devex-repls" (403 Forbidden); apply the RBAC in infra/k8s/base/rbac.yaml of this version',
      ],
      [
        // Not RBAC: an admission plugin (here a quota on the number of Secrets). The Role is not the fix.
        api(403, "Forbidden", 'secrets "devex-r1" is forbidden: exceeded quota: objects, requested: count/secrets=1'),
        "failed-precondition",
        "an admission check of the cluster refused to create deployments in namespace \"devex-repls\" (403 Forbidden: the namespace's ResourceQuota is used up); core's log has the cluster's words",
      ],
      [
        api(422, "Invalid", 'Deployment.apps "x" is invalid: spec.template.spec.containers[0].image: Required value', [
          { field: "spec.template.spec.containers[0].image" },
        ]),
        "failed-precondition",
        'the cluster refused to create deployments in namespace "devex-repls" (Invalid: spec.template.spec.containers[0].image); check the DEVEX_K8S_* settings',
      ],
      [
        api(409, "Conflict", "the object has been modified"),
        "unavailable",
        'a concurrent change interfered while trying to create deployments in namespace "devex-repls"; try again',
      ],
      [
        api(503, "ServiceUnavailable", "etcdserver: leader changed"),
        "unavailable",
        'the Kubernetes API server failed to create deployments in namespace "devex-repls" (HTTP 503); try again',
      ],
    ];
    for (const [err, kind, message] of cases) {
      const mapped = kubeError(err, "create", "deployments", NS);
      assert.ok(mapped instanceof DomainError);
      assert.deepEqual([mapped.kind, mapped.message], [kind, message]);
    }
  });

  it("a pod the cluster refuses (quota, Pod Security, RuntimeClass, LimitRange) fails start at once with the reason, and cleans up", async () => {
    const fake = await startValidatingFake();
    try {
      // The API server's words for each, as a 1.20 server gave them (issue 20).
      const refusals: [string, RegExp][] = [
        [
          'pods "devex-r-q-6d4f" is forbidden: exceeded quota: repls, requested: pods=1, used: pods=10, limited: pods=10',
          /ResourceQuota is used up/,
        ],
        [
          'pods "devex-r-q-6d4f" is forbidden: violates PodSecurity "restricted:latest": seccompProfile',
          /Pod Security admission/,
        ],
        [
          'pods "devex-r-q-6d4f" is forbidden: pod rejected: RuntimeClass "gvisor" not found',
          /RuntimeClass does not exist/,
        ],
        [
          'pods "devex-r-q-6d4f" is forbidden: maximum memory usage per Container is 256Mi, but limit is 2Gi',
          /LimitRange/,
        ],
      ];
      // A long readiness timeout: the refusal, not the timeout, must end the start.
      const driver = driverFor(fake, {}, 60_000);
      for (const [i, [message, cause]] of refusals.entries()) {
        fake.behavior.admitPod = () => message;
        const started = Date.now();
        await assert.rejects(driver.start(startRequest(`r-q${i}`), signal()), (err: unknown) => {
          assert.ok(err instanceof DomainError && err.kind === "failed-precondition", String(err));
          assert.match(err.message, new RegExp(`refused to create the runner's pod of repl r-q${i} \\(FailedCreate: `));
          assert.match(err.message, cause);
          assert.doesNotMatch(err.message, /forbidden|devex-r-q-6d4f/, "the cluster's words stay in core's log");
          return true;
        });
        assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
        await eventually(() => fake.objects("deployments", NS).length === 0, "the Deployment is deleted again");
      }
    } finally {
      await fake.close();
    }
  });

  it("owner references pass OwnerReferencesPermissionEnforcement with the shipped Role (no deployments/finalizers)", async () => {
    const fake = await startValidatingFake();
    try {
      const role = loadDocs(join(infra, "base/rbac.yaml")).find((d) => d.kind === "Role")!;
      fake.behavior.ownerReferencesEnforced = true;
      fake.behavior.finalizersAllowed = role.rules.some(
        (r: KubeObject) => r.resources.includes("deployments/finalizers") && r.verbs.includes("update"),
      );
      assert.equal(fake.behavior.finalizersAllowed, false, "least privilege: the Role does not grant it");
      const driver = driverFor(fake);
      const req = startRequest("r-owners");
      await driver.start(req, signal());
      await driver.stop({ ...req, reason: "t", persist: false }, signal());
    } finally {
      await fake.close();
    }
  });

  it("an API server older than 1.25 is refused for ephemeral persist containers, before anything is created; the sidecar takes it", async () => {
    const fake = await startValidatingFake();
    try {
      fake.behavior.serverVersion = "1.20";
      const driver = driverFor(fake);
      const req = startRequest("r-old");
      for (const call of [() => driver.start(req, signal()), () => driver.stop({ ...req, reason: "t" }, signal())]) {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof DomainError && err.kind === "failed-precondition", String(err));
          assert.match(
            err.message,
            /the Kubernetes API server is v1\.20\.0; Devex needs 1\.25 or later with DEVEX_K8S_PERSIST=ephemeral/,
          );
          return true;
        });
      }
      assert.deepEqual(fake.requests, [], "nothing was asked of an unsupported server");
      // The persist sidecar needs no ephemeral containers: 1.20 will do, 1.18 will not.
      const sidecar = driverFor(fake, { persist: { mode: "sidecar", intervalSeconds: 60 } });
      await sidecar.start(startRequest("r-old-sidecar"), signal());
      fake.behavior.serverVersion = "1.18";
      await assert.rejects(
        driverFor(fake, { persist: { mode: "sidecar", intervalSeconds: 60 } }).start(startRequest(), signal()),
        /is v1\.18\.0; Devex needs 1\.19 or later for networking\.k8s\.io\/v1 Ingresses/,
      );
      // Upgraded (a managed cluster says "27+"): the next start checks again and goes ahead.
      fake.behavior.serverVersion = "1.27+";
      await driver.start(req, signal());
    } finally {
      await fake.close();
    }
  });

  it("refused credentials and an unreachable API server", async () => {
    const fake = await startValidatingFake();
    const kc = fake.kubeConfig();
    kc.users[0] = { ...kc.users[0], token: "wrong" } as never;
    const bad = createKubernetesDriver({ apis: kubernetesApis(kc), settings: testSettings() });
    await assert.rejects(bad.list(signal()), /core's Kubernetes credentials were refused \(401\) to list deployments/);
    await fake.close();
    await assert.rejects(driverFor(fake).list(signal()), (err: unknown) => {
      assert.ok(err instanceof DomainError && err.kind === "unavailable");
      assert.match(err.message, /the Kubernetes API server could not be reached to list deployments/);
      return true;
    });
  });
});
