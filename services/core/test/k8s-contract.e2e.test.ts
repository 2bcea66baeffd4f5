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
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { driverContract } from "./driver-contract.js";
import { NS, startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { localKubeletParts, savedByPeriodicPersist } from "./k8s-kubelet-fixture.js";

async function kubernetesFixture(mode: "sidecar" | "ephemeral", intervalSeconds = 300) {
  const { kubelet, fixture } = await localKubeletParts("k8s-contract");
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
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
  return { ...fixture(driver, signer, () => fake.close()), fake };
}

driverContract("kubernetes (fake API server, persist sidecar)", () => kubernetesFixture("sidecar"));
driverContract("kubernetes (fake API server, ephemeral persist container)", () => kubernetesFixture("ephemeral"));

describe("kubernetes: a repl pod killed without a stop (its node died)", function () {
  this.timeout(60_000);

  it("the next start restores everything written before the last periodic persist", async () => {
    const f = await kubernetesFixture("sidecar", 1);
    try {
      const signal = () => AbortSignal.timeout(30_000);
      const { replId, request, readSaved } = await savedByPeriodicPersist(f, signal);
      // The node dies: the pod goes with no persist (delete the Deployment and let it cascade).
      await kubernetesApis(f.fake.kubeConfig()).apps.deleteNamespacedDeployment({
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
      assert.equal(await readSaved(f.clientUrl(again, replId)), "before the persist");
    } finally {
      await f.close();
    }
  });
});
