/**
 * The Kubernetes driver against the shared driver contract (driver-contract.ts): the real
 * @kubernetes/client-node talks to the fake API server (fake-kube-api.ts, a fake of the API server,
 * not Kubernetes), whose kubelet runs the repl pods' containers through k8s-local-kubelet.ts —
 * lib/sync restore/persist with the arguments the driver generated, the persist sidecar, and the
 * real runner. Both ways to persist pass it: the persist sidecar (the default) and the ephemeral
 * container at stop. With the sidecar, a pod killed without a stop (its node died) loses nothing
 * written before the last periodic persist. The same suite runs with the persist sidecar against a
 * real API server (1.20, pods run by the kubelet stand-in k8s-real-kubelet.ts: k8s-real-api.e2e),
 * and on a real cluster from .github/workflows/k8s-driver.yml (kind).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { type DriverFixture, driverContract } from "./driver-contract.js";
import { faultyBlobs } from "./faulty-blobs.js";
import { NS, startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { createLocalKubelet } from "./k8s-local-kubelet.js";

async function kubernetesFixture(mode: "sidecar" | "ephemeral", intervalSeconds = 300) {
  const dir = await mkdtemp(join(tmpdir(), "devex-k8s-contract-"));
  const blobs = faultyBlobs(createLocalBlobStore(join(dir, "blobs")));
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const kubelet = createLocalKubelet({ blobs, root: join(dir, "pods") });
  const fake = await startValidatingFake({ runtime: kubelet });
  const driver = createKubernetesDriver({
    apis: kubernetesApis(fake.kubeConfig()),
    settings: testSettings({ tokenPublicKeyPem: signer.publicKeyPem, persist: { mode, intervalSeconds } }),
    pollIntervalMs: 10,
    readyTimeoutMs: 20_000,
    persistTimeoutMs: 20_000,
    signer,
    persistUrl: (pod) => kubelet.persistUrl(pod),
  });
  const fixture: DriverFixture = {
    driver,
    blobs,
    signer,
    coreUrl: "http://127.0.0.1:9",
    clientUrl: (_started, replId) => {
      const url = kubelet.runnerUrl(replId);
      if (!url) throw new Error(`no live pod serves repl ${replId}`);
      return url;
    },
    failBlobs: (on) => {
      blobs.failing = on;
    },
    async close() {
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return { ...fixture, fake };
}

driverContract("kubernetes (fake API server, persist sidecar)", () => kubernetesFixture("sidecar"));
driverContract("kubernetes (fake API server, ephemeral persist container)", () => kubernetesFixture("ephemeral"));

describe("kubernetes: a repl pod killed without a stop (its node died)", function () {
  this.timeout(60_000);

  it("the next start restores everything written before the last periodic persist", async () => {
    const f = await kubernetesFixture("sidecar", 1);
    try {
      const signal = () => AbortSignal.timeout(30_000);
      const replId = `r${randomBytes(6).toString("hex")}`;
      const request = () => {
        const runnerId = `run-${randomBytes(8).toString("hex")}`;
        return {
          replId,
          owner: "alice",
          workspacePrefix: `repl/alice/${replId}/`,
          runnerId,
          controlToken: f.signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 600),
          coreUrl: f.coreUrl,
        };
      };
      const token = f.signer.mint({ aud: "runner", sub: "alice", repl: replId, scope: ["files"] }, 600);
      const first = request();
      const started = await f.driver.start(first, signal());
      const files = runnerClientsFor(f.clientUrl(started, replId), { token }).files;
      await files.writeFile({ path: "saved.txt", content: Buffer.from("before the persist") });
      // The sidecar's periodic persist (every second) stores it; no stop asked for it.
      const deadline = Date.now() + 20_000;
      let stored = new Map<string, Buffer>();
      while (!stored.has("saved.txt") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        stored = await readStoredWorkspace(f.blobs, first.workspacePrefix).catch(() => new Map());
      }
      assert.equal(stored.get("saved.txt")?.toString(), "before the persist");

      // The node dies: the pod goes with no persist (delete the Deployment and let it cascade).
      const kill = await f.fake.kubeConfig().makeApiClient((await import("@kubernetes/client-node")).AppsV1Api);
      await kill.deleteNamespacedDeployment({
        name: `devex-${replId}`,
        namespace: NS,
        propagationPolicy: "Background",
      });
      const gone = Date.now() + 10_000;
      while (f.fake.objects("pods", NS).some((p) => p.metadata.labels?.["devex.dev/repl-id"] === replId)) {
        assert.ok(Date.now() < gone, "the pod went away");
        await new Promise((r) => setTimeout(r, 20));
      }

      const again = await f.driver.start(request(), signal());
      const restored = runnerClientsFor(f.clientUrl(again, replId), { token }).files;
      const read = await restored.readFile({ path: "saved.txt" });
      assert.equal(Buffer.from(read.content).toString(), "before the persist");
    } finally {
      await f.close();
    }
  });
});
