/** Shared settings and requests for the Kubernetes driver tests (k8s-*.test.ts). */
import type { StartRequest } from "../src/driver/driver.js";
import type { KubernetesDriverSettings } from "../src/driver/kubernetes/objects.js";

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
