/**
 * The Kubernetes driver against the shared driver contract on a REAL cluster — run by
 * .github/workflows/k8s-driver.yml on kind (it cannot run on a machine without Docker). Skipped
 * unless DEVEX_K8S_E2E=1. It expects what the workflow sets up:
 * - KUBECONFIG: core's identity (a token of the devex-core ServiceAccount), so infra's RBAC is what
 *   is exercised; DEVEX_K8S_ADMIN_KUBECONFIG: an admin, used only to inject the S3 outage;
 * - infra/k8s/overlays/kind applied (MinIO, NetworkPolicies, the devex-s3 Secret), Traefik from
 *   infra/k8s/traefik/values.yaml on host port 80, the runner image loaded as ghcr.io/devex/runner-node:dev;
 * - MinIO port-forwarded to DEVEX_TEST_S3_ENDPOINT (default http://127.0.0.1:9000).
 * The S3 outage removes the NetworkPolicy that lets repl pods reach MinIO, and puts it back.
 */
import { KubeConfig, NetworkingV1Api, type V1NetworkPolicy } from "@kubernetes/client-node";
import { createS3BlobStore } from "../../../lib/blob/s3.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { driverContract } from "./driver-contract.js";

const enabled = process.env.DEVEX_K8S_E2E === "1";
const NS = "devex-repls";
const MINIO_POLICY = "repl-egress-to-minio";

if (!enabled) {
  describe("driver contract: kubernetes (kind)", () => {
    it("runs only with DEVEX_K8S_E2E=1 on a kind cluster (.github/workflows/k8s-driver.yml)", function () {
      this.skip();
    });
  });
} else {
  driverContract("kubernetes (kind)", async () => {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const admin = new KubeConfig();
    admin.loadFromFile(process.env.DEVEX_K8S_ADMIN_KUBECONFIG ?? "");
    const net = admin.makeApiClient(NetworkingV1Api);
    const policy: V1NetworkPolicy = await net.readNamespacedNetworkPolicy({ name: MINIO_POLICY, namespace: NS });
    const blobs = createS3BlobStore({
      bucket: "devex",
      region: "us-east-1",
      endpoint: process.env.DEVEX_TEST_S3_ENDPOINT ?? "http://127.0.0.1:9000",
      forcePathStyle: true,
      accessKeyId: process.env.DEVEX_TEST_S3_ACCESS_KEY_ID ?? "devex-minio",
      secretAccessKey: process.env.DEVEX_TEST_S3_SECRET_ACCESS_KEY ?? "devex-minio-secret",
    });
    const signer = createTokenSigner(generateSigningKey().privateKeyPem);
    const driver = createKubernetesDriver({
      apis: kubernetesApis(kc),
      settings: {
        namespace: NS,
        runnerImage: "ghcr.io/devex/runner-node:dev",
        imagePullPolicy: "IfNotPresent",
        runnerBaseUrl: "http://repl.localtest.me",
        ingressClassName: "traefik",
        hostNetwork: false,
        serviceAccountName: "devex-runner",
        // The test process is outside the cluster and cannot reach a pod's sidecar by its IP.
        persist: { mode: "ephemeral", intervalSeconds: 60 },
        resources: { cpuRequest: "50m", cpuLimit: "1", memoryRequest: "128Mi", memoryLimit: "512Mi" },
        workspaceSizeLimit: "1Gi",
        s3CredentialsSecret: "devex-s3",
        s3Env: {
          DEVEX_S3_BUCKET: "devex",
          DEVEX_S3_REGION: "us-east-1",
          DEVEX_S3_ENDPOINT: "http://minio.devex.svc.cluster.local:9000",
          DEVEX_S3_FORCE_PATH_STYLE: "true",
        },
        tokenPublicKeyPem: signer.publicKeyPem,
        // MinIO is reached through the overlay's repl-egress-to-minio policy.
        egress: { deniedCidrs: [], storageCidrs: [] },
      },
      readyTimeoutMs: 180_000,
      persistTimeoutMs: 120_000,
      pollIntervalMs: 500,
    });
    return {
      driver,
      blobs,
      signer,
      coreUrl: "http://devex-core.devex.svc.cluster.local:8080",
      clientUrl: (started) => started.url,
      async failBlobs(on) {
        if (on) await net.deleteNamespacedNetworkPolicy({ name: MINIO_POLICY, namespace: NS });
        else
          await net.createNamespacedNetworkPolicy({
            namespace: NS,
            body: { ...policy, metadata: { name: MINIO_POLICY, namespace: NS, labels: policy.metadata?.labels } },
          });
      },
      close: () => blobs.close(),
    };
  });
}
