/** Shared settings and requests for the Kubernetes driver tests (k8s-*.test.ts). */
import type { StartRequest } from "../src/driver/driver.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import type { KubernetesDriverSettings } from "../src/driver/kubernetes/objects.js";
import { type ContainerRuntime, type FakeKubeApi, startFakeKubeApi } from "./fake-kube-api.js";
import { preloadModels, validateObjectSync } from "./k8s-schema.js";

export const NS = "devex-repls";
export const EGRESS_SECRET = "test-egress-secret-0123456789abcdef";

export function testSettings(overrides: Partial<KubernetesDriverSettings> = {}): KubernetesDriverSettings {
  return {
    namespace: "devex-repls",
    runnerImage: "ghcr.io/devex/runner-node:test",
    imagePullPolicy: "IfNotPresent",
    runnerBaseUrl: "https://repl.devex.test",
    ingressClassName: "traefik",
    ingressTlsSecret: "devex-repl-tls",
    hostNetwork: false,
    resources: { cpuRequest: "250m", cpuLimit: "1", memoryRequest: "256Mi", memoryLimit: "1Gi" },
    workspaceSizeLimit: "2Gi",
    s3CredentialsSecret: "devex-s3",
    s3Env: { DEVEX_S3_BUCKET: "devex", DEVEX_S3_REGION: "us-east-1" },
    tokenPublicKeyPem: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n",
    egress: {
      deniedCidrs: ["10.244.0.0/16", "10.96.0.0/12", "203.0.113.2/32", "fd00:10:96::/112"],
      storageCidrs: [],
      proxy: { url: "http://devex-egress.devex.svc:3128", namespace: "devex", secret: EGRESS_SECRET },
    },
    // The ephemeral container by default (the fake's simulated runtime runs it); the sidecar where
    // a test runs pods for real (k8s-local-kubelet.ts).
    persist: { mode: "ephemeral", intervalSeconds: 300 },
    ...overrides,
  };
}

let n = 0;
export function startRequest(replId = `r${++n}-${Date.now().toString(36)}`, owner = "alice"): StartRequest {
  return {
    replId,
    owner,
    workspacePrefix: `repl/${owner}/${replId}/`,
    runnerId: `run-${Math.random().toString(16).slice(2, 18).padEnd(16, "0")}`,
    controlToken: "control-token-secret",
    coreUrl: "http://devex-core.devex.svc:8080",
  };
}

export const builtinKinds = [
  { apiVersion: "apps/v1", kind: "Deployment" },
  { apiVersion: "v1", kind: "Pod" },
  { apiVersion: "v1", kind: "Service" },
  { apiVersion: "v1", kind: "Secret" },
  { apiVersion: "networking.k8s.io/v1", kind: "Ingress" },
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
];

/** The operator-created S3 credentials Secret the repl pods' sync containers read (envFrom). */
export const s3Secret = (namespace: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "devex-s3", namespace },
  stringData: { DEVEX_S3_ACCESS_KEY_ID: "test-key", DEVEX_S3_SECRET_ACCESS_KEY: "test-secret" },
});

export async function startValidatingFake(
  opts: { traefik?: boolean; namespaces?: string[]; runtime?: ContainerRuntime } = {},
) {
  await preloadModels(builtinKinds);
  return startFakeKubeApi({
    namespaces: opts.namespaces ?? [NS],
    traefik: opts.traefik,
    runtime: opts.runtime,
    validate: validateObjectSync,
    seed: [s3Secret((opts.namespaces ?? [NS])[0])],
  });
}

export function driverFor(fake: FakeKubeApi, settings: Partial<KubernetesDriverSettings> = {}, readyTimeoutMs = 2000) {
  return createKubernetesDriver({
    apis: kubernetesApis(fake.kubeConfig()),
    settings: testSettings(settings),
    pollIntervalMs: 5,
    readyTimeoutMs,
    persistTimeoutMs: 2000,
  });
}
