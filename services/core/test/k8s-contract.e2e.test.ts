/**
 * The Kubernetes driver against the shared driver contract (driver-contract.ts): the real
 * @kubernetes/client-node talks to the fake API server (fake-kube-api.ts, a fake of the API server,
 * not Kubernetes), whose kubelet runs the repl pods' containers through k8s-local-kubelet.ts —
 * lib/sync restore/persist with the arguments the driver generated, and the real runner. On a real
 * cluster the same suite runs from .github/workflows/k8s-driver.yml (kind).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { driverContract } from "./driver-contract.js";
import { faultyBlobs } from "./faulty-blobs.js";
import { startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { createLocalKubelet } from "./k8s-local-kubelet.js";

driverContract("kubernetes (fake API server)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "devex-k8s-contract-"));
  const blobs = faultyBlobs(createLocalBlobStore(join(dir, "blobs")));
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const kubelet = createLocalKubelet({ blobs, root: join(dir, "pods") });
  const fake = await startValidatingFake({ runtime: kubelet });
  const driver = createKubernetesDriver({
    apis: kubernetesApis(fake.kubeConfig()),
    settings: testSettings({ tokenPublicKeyPem: signer.publicKeyPem }),
    pollIntervalMs: 10,
    readyTimeoutMs: 20_000,
    persistTimeoutMs: 20_000,
  });
  return {
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
});
