/**
 * Core's DEVEX_K8S_* variables (spread into core's config schema) and the driver built from them.
 * Documented in services/core/README.md ("Kubernetes").
 */
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { cidrListSetting, parseDenyList } from "../../../../../lib/egress/host-ranges.js";
import { env } from "../../../../../lib/kit/config.js";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import * as z from "../../../../../lib/kit/zod.js";
import type { Driver } from "../driver.js";
import { kubernetesApis } from "./apis.js";
import { createKubernetesDriver } from "./driver.js";
import type { KubernetesDriverSettings } from "./objects.js";

const quantityPattern = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const quantity = (fallback: string) =>
  z._default(
    z.string().check(z.regex(quantityPattern, "must be a Kubernetes quantity such as 250m, 1, 512Mi or 2Gi")),
    fallback,
  );
const name = () =>
  z.optional(z.string().check(z.regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a Kubernetes object name")));
const namespace = (fallback: string) =>
  z._default(z.string().check(z.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)), fallback);
const text = () => z.string().check(z.minLength(1));

export const kubernetesConfigFields = {
  DEVEX_K8S_NAMESPACE: namespace("devex-repls"),
  DEVEX_K8S_RUNNER_IMAGE: z._default(text(), "ghcr.io/devex/runner-node:latest"),
  DEVEX_K8S_MCP_IMAGE: z.optional(text()),
  DEVEX_K8S_IMAGE_PULL_POLICY: z.optional(z.enum(["Always", "IfNotPresent", "Never"])),
  DEVEX_K8S_RUNNER_BASE_URL: z.optional(env.url()),
  DEVEX_K8S_PREVIEW_BASE_URL: z.optional(env.url()),
  DEVEX_K8S_CORE_URL: z.optional(env.url()),
  DEVEX_K8S_INGRESS_CLASS: z._default(text(), "traefik"),
  DEVEX_K8S_INGRESS_TLS_SECRET: name(),
  DEVEX_K8S_RUNTIME_CLASS: name(),
  DEVEX_K8S_HOST_NETWORK: env.bool(false),
  DEVEX_K8S_SERVICE_ACCOUNT: name(),
  DEVEX_K8S_CPU_REQUEST: quantity("250m"),
  DEVEX_K8S_CPU_LIMIT: quantity("1"),
  DEVEX_K8S_MEMORY_REQUEST: quantity("256Mi"),
  DEVEX_K8S_MEMORY_LIMIT: quantity("1Gi"),
  DEVEX_K8S_WORKSPACE_SIZE: quantity("2Gi"),
  DEVEX_K8S_S3_SECRET: name(),
  DEVEX_K8S_READY_TIMEOUT: env.duration("3m"),
  DEVEX_K8S_PERSIST_TIMEOUT: env.duration("10m"),
  /**
   * How a repl pod's trees are persisted: "sidecar" (a container of the pod persists every
   * DEVEX_PERSIST_INTERVAL and at stop, so a dead node loses at most that much; any runtime) or
   * "ephemeral" (an ephemeral container at stop only; no memory for a sidecar).
   */
  DEVEX_K8S_PERSIST: z._default(z.enum(["sidecar", "ephemeral"]), "sidecar"),
  /** The cluster's own ranges, which no repl pod reaches whatever its policy names: the pod network, */
  DEVEX_K8S_POD_CIDRS: cidrListSetting(),
  /** the Service ClusterIP range (core and Redis are behind both), */
  DEVEX_K8S_SERVICE_CIDRS: cidrListSetting(),
  /** and the API server's addresses (`kubectl get endpoints kubernetes`). */
  DEVEX_K8S_API_SERVER_CIDRS: cidrListSetting(),
  /** The S3 endpoint's ranges, reachable by repl pods under every policy: their restore and persist containers upload from the pod. */
  DEVEX_K8S_STORAGE_CIDRS: cidrListSetting(),
  /** The egress proxy (services/egress) repl pods reach names through; unset: allowlists open only CIDRs. */
  DEVEX_K8S_EGRESS_PROXY_URL: z.optional(env.url()),
  /** The namespace of the proxy's pods (their NetworkPolicy peer). */
  DEVEX_K8S_EGRESS_PROXY_NAMESPACE: namespace("devex"),
  /** The secret repl credentials for the proxy are derived from (the proxy's DEVEX_EGRESS_SECRET). */
  DEVEX_K8S_EGRESS_SECRET: z.optional(z.string().check(z.minLength(32, "must be at least 32 characters"))),
};

type K8sConfig = z.output<z.ZodMiniObject<typeof kubernetesConfigFields>> & {
  DEVEX_S3_BUCKET?: string;
  DEVEX_S3_ENDPOINT?: string;
  DEVEX_S3_REGION: string;
  DEVEX_S3_FORCE_PATH_STYLE: boolean;
  DEVEX_S3_PREFIX: string;
  DEVEX_EGRESS_DENY_CIDRS: string;
  DEVEX_PERSIST_INTERVAL: number;
};

/** Problems that make the Kubernetes driver unusable with this config (empty when fine). */
export function kubernetesConfigProblems(c: K8sConfig): string[] {
  const problems: string[] = [];
  if (!c.DEVEX_K8S_RUNNER_BASE_URL)
    problems.push("DEVEX_K8S_RUNNER_BASE_URL is required with DEVEX_DRIVER=kubernetes (e.g. https://repl.example.com)");
  if (!c.DEVEX_S3_BUCKET)
    problems.push("DEVEX_S3_BUCKET is required with DEVEX_DRIVER=kubernetes: repl pods restore and persist through S3");
  if (c.DEVEX_K8S_EGRESS_PROXY_URL && !c.DEVEX_K8S_EGRESS_SECRET)
    problems.push(
      "DEVEX_K8S_EGRESS_SECRET is required with DEVEX_K8S_EGRESS_PROXY_URL (the proxy's DEVEX_EGRESS_SECRET)",
    );
  return problems;
}

export function kubernetesSettings(c: K8sConfig, tokenPublicKeyPem: string): KubernetesDriverSettings {
  const s3Env: Record<string, string> = {
    DEVEX_S3_BUCKET: c.DEVEX_S3_BUCKET ?? "",
    DEVEX_S3_REGION: c.DEVEX_S3_REGION,
    DEVEX_S3_FORCE_PATH_STYLE: String(c.DEVEX_S3_FORCE_PATH_STYLE),
  };
  if (c.DEVEX_S3_ENDPOINT) s3Env.DEVEX_S3_ENDPOINT = c.DEVEX_S3_ENDPOINT;
  if (c.DEVEX_S3_PREFIX) s3Env.DEVEX_S3_PREFIX = c.DEVEX_S3_PREFIX;
  return {
    namespace: c.DEVEX_K8S_NAMESPACE,
    runnerImage: c.DEVEX_K8S_RUNNER_IMAGE,
    mcpImage: c.DEVEX_K8S_MCP_IMAGE,
    imagePullPolicy: c.DEVEX_K8S_IMAGE_PULL_POLICY,
    runnerBaseUrl: c.DEVEX_K8S_RUNNER_BASE_URL ?? "",
    previewBaseUrl: c.DEVEX_K8S_PREVIEW_BASE_URL,
    coreUrl: c.DEVEX_K8S_CORE_URL,
    ingressClassName: c.DEVEX_K8S_INGRESS_CLASS,
    ingressTlsSecret: c.DEVEX_K8S_INGRESS_TLS_SECRET,
    runtimeClassName: c.DEVEX_K8S_RUNTIME_CLASS,
    hostNetwork: c.DEVEX_K8S_HOST_NETWORK,
    serviceAccountName: c.DEVEX_K8S_SERVICE_ACCOUNT,
    resources: {
      cpuRequest: c.DEVEX_K8S_CPU_REQUEST,
      cpuLimit: c.DEVEX_K8S_CPU_LIMIT,
      memoryRequest: c.DEVEX_K8S_MEMORY_REQUEST,
      memoryLimit: c.DEVEX_K8S_MEMORY_LIMIT,
    },
    workspaceSizeLimit: c.DEVEX_K8S_WORKSPACE_SIZE,
    s3CredentialsSecret: c.DEVEX_K8S_S3_SECRET,
    s3Env,
    tokenPublicKeyPem,
    persist: { mode: c.DEVEX_K8S_PERSIST, intervalSeconds: Math.max(1, Math.round(c.DEVEX_PERSIST_INTERVAL / 1000)) },
    egress: {
      deniedCidrs: kubernetesDeniedCidrs(c),
      storageCidrs: c.DEVEX_K8S_STORAGE_CIDRS,
      proxy:
        c.DEVEX_K8S_EGRESS_PROXY_URL && c.DEVEX_K8S_EGRESS_SECRET
          ? {
              url: c.DEVEX_K8S_EGRESS_PROXY_URL,
              namespace: c.DEVEX_K8S_EGRESS_PROXY_NAMESPACE,
              secret: c.DEVEX_K8S_EGRESS_SECRET,
            }
          : undefined,
    },
  };
}

/** What repl pods never reach besides lib/egress's never tier: the operator's list and the cluster's ranges. */
export function kubernetesDeniedCidrs(c: K8sConfig): string[] {
  return [
    ...parseDenyList(c.DEVEX_EGRESS_DENY_CIDRS),
    ...c.DEVEX_K8S_POD_CIDRS,
    ...c.DEVEX_K8S_SERVICE_CIDRS,
    ...c.DEVEX_K8S_API_SERVER_CIDRS,
  ];
}

/**
 * The driver for main.ts: credentials from the in-cluster service account or $KUBECONFIG
 * (KubeConfig.loadFromDefault). Tests build the driver with createKubernetesDriver instead.
 */
export function kubernetesDriverFromConfig(c: K8sConfig, signer: TokenSigner, log: Logger): Driver {
  const problems = kubernetesConfigProblems(c);
  if (problems.length) throw new Error(`invalid configuration: ${problems.join("; ")}`);
  if (!c.DEVEX_K8S_PREVIEW_BASE_URL) {
    log.warn(
      "every repl's previews share the repl host's origin, where one repl's public preview could read another's private one: set DEVEX_K8S_PREVIEW_BASE_URL (a wildcard host) to give each repl its own",
    );
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return createKubernetesDriver({
    apis: kubernetesApis(kc),
    settings: kubernetesSettings(c, signer.publicKeyPem),
    signer,
    log: log.child({ driver: "kubernetes" }),
    readyTimeoutMs: c.DEVEX_K8S_READY_TIMEOUT,
    persistTimeoutMs: c.DEVEX_K8S_PERSIST_TIMEOUT,
  });
}
