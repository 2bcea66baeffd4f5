/**
 * The Kubernetes objects of one repl, built as plain data (no API calls), so tests can validate
 * every one of them against the Kubernetes schemas:
 *
 *   Deployment devex-<replId> (1 replica)
 *     init container  "restore": lib/sync restore of repl/<user>/<replId>/ into the emptyDir /workspaces
 *                                and of home/<user>/<replId>/ into the emptyDir /home/devex
 *     container       "runner":  the runner on :8090, readiness on /healthz; the project at /workspace
 *                                (its folder of /workspaces), the home at /home/devex, the repl's id
 *                                as hostname (repl-identity.ts: the same on every driver)
 *     container       "mcp":     optional MCP sidecar on :8091
 *   Secret     devex-<replId>  the runner's control token (never in the Deployment spec)
 *   Service    devex-<replId>  → runner (and mcp)
 *   Middleware devex-<replId>  traefik.io/v1alpha1 StripPrefix /<replId>
 *   Ingress    devex-<replId>  <host>/<replId> → Service, through the Middleware
 *   IngressRoute devex-<replId> traefik.io/v1alpha1: gRPC and Connect streams (by content type) on
 *              <host>/<replId>, and any call naming the repl in a devex-repl-id header, to the
 *              Service over h2c (HTTP/2 end to end: trailers, bidi streams)
 *   NetworkPolicy devex-<replId>  the repl's egress policy (egress-policy.ts)
 *
 * Everything carries the ownership labels; everything but the Deployment has an ownerReference to
 * it, so deleting the Deployment deletes the rest (garbage collector).
 */
import { createHash } from "node:crypto";
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1EphemeralContainer,
  V1Ingress,
  V1NetworkPolicy,
  V1OwnerReference,
  V1Secret,
  V1SecurityContext,
  V1Service,
} from "@kubernetes/client-node";
import { egressProxyToken } from "../../../../../lib/contracts/egress-proxy.js";
import type { EgressPolicy } from "../../../../../lib/egress/policy.js";
import { previewOriginFor } from "../../repl/preview-origin.js";
import { HOME_DIR, hostnameFor, PROJECT_DIR } from "../repl-identity.js";
import { buildNetworkPolicy, EGRESS_TOKEN_KEY, type KubernetesEgressSettings, proxyEnv } from "./egress-policy.js";

export const MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_REPL = "devex.dev/repl-id";
export const LABEL_USER = "devex.dev/user";
export const LABEL_RUNNER = "devex.dev/runner-id";
export const ANNOTATION_URL = "devex.dev/runner-url";
/** The exact ids (labels hold them too, but hashed when they are not valid label values). */
export const ANNOTATION_REPL = "devex.dev/repl-id";
export const ANNOTATION_RUNNER = "devex.dev/runner-id";
export const RUNNER_PORT = 8090;
export const MCP_PORT = 8091;
/** The persist sidecar's port (lib/sync/persist-service.ts): core's requests only. */
export const PERSIST_PORT = 8092;
/** The emptyDir volume. The workspace is a directory in it (workspaceDir): lib/sync's restore empties
 * and re-creates its target, which a mount point does not allow (EBUSY). */
export const WORKSPACE_DIR = "/workspaces";
export const workspaceDir = (replId: string) => `${WORKSPACE_DIR}/${replId}`;
/** `sh -c` runs the argv that follows it with stdout (lib/sync's JSON result) in the termination
 * message, where the driver reads the file counts; on failure the log tail is the message instead. */
export const RESULT_TO_TERMINATION_LOG = 'exec "$0" "$@" > /dev/termination-log';
/** lib/sync's manifest, shared by the restore and persist containers, outside the workspace and not
 * mounted in the runner, so users can neither see nor tamper with it. */
export const SYNC_STATE_DIR = "/var/lib/devex-sync";
export const MIDDLEWARE_GROUP = "traefik.io";
export const MIDDLEWARE_VERSION = "v1alpha1";
export const MIDDLEWARE_PLURAL = "middlewares";
export const INGRESS_ROUTE_PLURAL = "ingressroutes";

/** Everything about the repl pods that an operator configures (core's DEVEX_K8S_* variables). */
export interface KubernetesDriverSettings {
  namespace: string;
  runnerImage: string;
  /** Image of the MCP sidecar; unset → no sidecar. */
  mcpImage?: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Base URL of repl traffic, e.g. https://repl.example.com; its host is the Ingress host. */
  runnerBaseUrl: string;
  /**
   * Base URL of previews, e.g. https://preview.example.com: each repl's are served on
   * `<replId>.<its host>` (a wildcard DNS record, and a wildcard certificate in ingressTlsSecret),
   * an origin of their own. Unset: below the repl's runner URL, one origin shared by every repl.
   */
  previewBaseUrl?: string;
  /** Where runner pods reach core (e.g. http://devex-core.devex.svc:8080); unset → the URL core passes. */
  coreUrl?: string;
  ingressClassName: string;
  /** Secret holding the TLS certificate for the Ingress host; unset → no tls section. */
  ingressTlsSecret?: string;
  runtimeClassName?: string;
  hostNetwork: boolean;
  serviceAccountName?: string;
  resources: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string };
  /** Size limit of the /workspaces emptyDir, e.g. "2Gi". */
  workspaceSizeLimit: string;
  /** Secret with DEVEX_S3_ACCESS_KEY_ID / DEVEX_S3_SECRET_ACCESS_KEY for restore and persist (envFrom); unset → ambient credentials. */
  s3CredentialsSecret?: string;
  /** Non-secret S3 settings passed to restore/persist (bucket, endpoint, region, path style, prefix). */
  s3Env: Record<string, string>;
  /** The Ed25519 public key (PEM) the runner verifies access tokens with. */
  tokenPublicKeyPem: string;
  /** What repl pods may reach (egress-policy.ts). */
  egress: KubernetesEgressSettings;
  /** Persist by a sidecar (every intervalSeconds and at stop) or by an ephemeral container at stop. */
  persist: { mode: "sidecar" | "ephemeral"; intervalSeconds: number };
}

export interface ReplIdentity {
  replId: string;
  owner: string;
  runnerId: string;
  workspacePrefix: string;
  /** Where the repl's home is stored; absent or "": the home is not persisted. */
  homePrefix?: string;
}

/** Kubernetes object name for a repl: a DNS-1035 label of at most 63 characters. */
export function objectName(replId: string): string {
  const name = `devex-${replId}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(replId).digest("hex").slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, "")}-${hash}`;
}

/** Label values are limited to 63 characters of [A-Za-z0-9._-]; longer users are hashed. */
export function labelValue(value: string): string {
  const clean = value.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  if (clean.length <= 63 && clean === value) return value;
  return `h-${createHash("sha256").update(value).digest("hex").slice(0, 40)}`;
}

export function replLabels(id: Pick<ReplIdentity, "replId" | "owner" | "runnerId">): Record<string, string> {
  return {
    [MANAGED_BY]: "devex",
    "app.kubernetes.io/name": "devex-runner",
    [LABEL_REPL]: labelValue(id.replId),
    [LABEL_USER]: labelValue(id.owner),
    [LABEL_RUNNER]: labelValue(id.runnerId),
  };
}

export const managedSelector = `${MANAGED_BY}=devex,app.kubernetes.io/name=devex-runner`;
export const runnerSelector = (runnerId: string) => `${managedSelector},${LABEL_RUNNER}=${labelValue(runnerId)}`;

export function runnerUrl(settings: KubernetesDriverSettings, replId: string): string {
  return `${settings.runnerBaseUrl.replace(/\/+$/, "")}/${replId}`;
}

const restrictedSecurityContext = (readOnlyRoot: boolean): V1SecurityContext => ({
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: readOnlyRoot,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
});

function syncEnv(settings: KubernetesDriverSettings): V1EnvVar[] {
  return Object.entries(settings.s3Env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({ name, value }));
}

function syncEnvFrom(settings: KubernetesDriverSettings) {
  return settings.s3CredentialsSecret ? [{ secretRef: { name: settings.s3CredentialsSecret } }] : undefined;
}

/** The lib/sync CLI as shipped in the runner image (infra/docker/runner.Dockerfile). */
export function syncCommand(
  op: "restore" | "persist",
  id: Pick<ReplIdentity, "replId" | "workspacePrefix" | "homePrefix">,
): string[] {
  return [
    "sh",
    "-c",
    RESULT_TO_TERMINATION_LOG,
    "node",
    "/app/dist/sync/cli.mjs",
    op,
    "--dir",
    workspaceDir(id.replId),
    "--prefix",
    id.workspacePrefix,
    "--manifest",
    `${SYNC_STATE_DIR}/manifest.json`,
    ...(id.homePrefix
      ? ["--home", HOME_DIR, "--home-prefix", id.homePrefix, "--home-manifest", `${SYNC_STATE_DIR}/home-manifest.json`]
      : []),
  ];
}

/** What the restore and persist containers mount: both trees and the manifests. */
const syncMounts = () => [
  { name: "workspaces", mountPath: WORKSPACE_DIR },
  { name: "home", mountPath: HOME_DIR },
  { name: "sync-state", mountPath: SYNC_STATE_DIR },
  { name: "tmp", mountPath: "/tmp" },
];

function restoreContainer(settings: KubernetesDriverSettings, id: ReplIdentity): V1Container {
  return {
    name: "restore",
    image: settings.runnerImage,
    imagePullPolicy: settings.imagePullPolicy,
    command: syncCommand("restore", id),
    env: syncEnv(settings),
    envFrom: syncEnvFrom(settings),
    volumeMounts: syncMounts(),
    resources: limits(settings),
    securityContext: restrictedSecurityContext(true),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function limits(settings: KubernetesDriverSettings) {
  const r = settings.resources;
  return {
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
    limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
  };
}

function runnerContainer(settings: KubernetesDriverSettings, id: ReplIdentity, name: string, coreUrl: string) {
  const container: V1Container = {
    name: "runner",
    image: settings.runnerImage,
    imagePullPolicy: settings.imagePullPolicy,
    ports: [{ name: "http", containerPort: RUNNER_PORT, protocol: "TCP" }],
    env: [
      { name: "DEVEX_RUNNER_WORKSPACE", value: PROJECT_DIR },
      { name: "DEVEX_RUNNER_HOME", value: HOME_DIR },
      { name: "DEVEX_RUNNER_HOST", value: "0.0.0.0" },
      { name: "DEVEX_RUNNER_PORT", value: String(RUNNER_PORT) },
      // Clients reach it through the ingress, whose address X-Forwarded-For's last entry replaces in
      // the audit log; the repl-isolation NetworkPolicy admits only the ingress and core (infra/k8s/README.md).
      { name: "DEVEX_TRUST_PROXY", value: "true" },
      { name: "DEVEX_REPL_ID", value: id.replId },
      { name: "DEVEX_TOKEN_PUBLIC_KEY", value: settings.tokenPublicKeyPem },
      { name: "DEVEX_CORE_URL", value: coreUrl },
      { name: "DEVEX_RUNNER_ID", value: id.runnerId },
      {
        name: "DEVEX_RUNNER_CONTROL_TOKEN",
        valueFrom: { secretKeyRef: { name, key: "control-token" } },
      },
      { name: "HOME", value: HOME_DIR },
      ...(settings.egress.proxy ? proxyEnv(settings.egress.proxy, id.replId, name, coreUrl) : []),
    ],
    readinessProbe: {
      httpGet: { path: "/healthz", port: "http" },
      periodSeconds: 2,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: "http" },
      initialDelaySeconds: 10,
      periodSeconds: 20,
    },
    // Only its own folder of the volume, at the path the project has on every driver.
    volumeMounts: [
      { name: "workspaces", mountPath: PROJECT_DIR, subPath: id.replId },
      { name: "tmp", mountPath: "/tmp" },
      { name: "home", mountPath: HOME_DIR },
    ],
    resources: limits(settings),
    securityContext: restrictedSecurityContext(true),
  };
  return container;
}

function mcpContainer(settings: KubernetesDriverSettings, image: string, coreUrl: string): V1Container {
  return {
    name: "mcp",
    image,
    imagePullPolicy: settings.imagePullPolicy,
    ports: [{ name: "mcp", containerPort: MCP_PORT, protocol: "TCP" }],
    env: [
      { name: "DEVEX_CORE_URL", value: coreUrl },
      { name: "DEVEX_MCP_HOST", value: "0.0.0.0" },
      { name: "DEVEX_MCP_PORT", value: String(MCP_PORT) },
    ],
    resources: {
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "250m", memory: "256Mi" },
    },
    securityContext: restrictedSecurityContext(true),
  };
}

export function buildDeployment(
  settings: KubernetesDriverSettings,
  id: ReplIdentity,
  coreUrl: string,
  runnerBaseUrl = runnerUrl(settings, id.replId),
): V1Deployment {
  const name = objectName(id.replId);
  const labels = replLabels(id);
  const containers = [runnerContainer(settings, id, name, coreUrl)];
  if (settings.mcpImage) containers.push(mcpContainer(settings, settings.mcpImage, coreUrl));
  if (settings.persist.mode === "sidecar") containers.push(persistSidecar(settings, id));
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name,
      namespace: settings.namespace,
      labels,
      annotations: { [ANNOTATION_URL]: runnerBaseUrl, [ANNOTATION_REPL]: id.replId, [ANNOTATION_RUNNER]: id.runnerId },
    },
    spec: {
      replicas: 1,
      // Recreate: never two pods of one repl, each with its own copy of the workspace.
      strategy: { type: "Recreate" },
      selector: { matchLabels: { [LABEL_REPL]: labels[LABEL_REPL], [LABEL_RUNNER]: labels[LABEL_RUNNER] } },
      template: {
        metadata: { labels },
        spec: {
          hostname: hostnameFor(id.replId),
          automountServiceAccountToken: false,
          serviceAccountName: settings.serviceAccountName,
          enableServiceLinks: false,
          runtimeClassName: settings.runtimeClassName,
          hostNetwork: settings.hostNetwork || undefined,
          dnsPolicy: settings.hostNetwork ? "ClusterFirstWithHostNet" : undefined,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          terminationGracePeriodSeconds: 10,
          initContainers: [restoreContainer(settings, id)],
          containers,
          volumes: [
            { name: "workspaces", emptyDir: { sizeLimit: settings.workspaceSizeLimit } },
            { name: "sync-state", emptyDir: { sizeLimit: "256Mi" } },
            { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
            { name: "home", emptyDir: { sizeLimit: "1Gi" } },
          ],
        },
      },
    },
  };
}

/**
 * The Deployment as owner, for the garbage collector. Without blockOwnerDeletion: under
 * OwnerReferencesPermissionEnforcement (on in OpenShift) setting it needs update on
 * deployments/finalizers, and it only orders a foreground deletion; core deletes in the background.
 */
export function ownerReference(deployment: V1Deployment): V1OwnerReference {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    name: deployment.metadata!.name!,
    uid: deployment.metadata!.uid!,
    controller: true,
  };
}

export function ownedMeta(settings: KubernetesDriverSettings, id: ReplIdentity, owner: V1OwnerReference) {
  return {
    name: objectName(id.replId),
    namespace: settings.namespace,
    labels: replLabels(id),
    ownerReferences: [owner],
  };
}

export function buildSecret(
  settings: KubernetesDriverSettings,
  id: ReplIdentity,
  owner: V1OwnerReference,
  controlToken: string,
): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: ownedMeta(settings, id, owner),
    type: "Opaque",
    stringData: {
      "control-token": controlToken,
      ...(settings.egress.proxy && { [EGRESS_TOKEN_KEY]: egressProxyToken(settings.egress.proxy.secret, id.replId) }),
    },
  };
}

/** The repl's NetworkPolicy: selects its pod (the Deployment's selector) and allows what `policy` does. */
export function buildReplNetworkPolicy(
  settings: KubernetesDriverSettings,
  id: ReplIdentity,
  owner: V1OwnerReference,
  policy: EgressPolicy,
): V1NetworkPolicy {
  const labels = replLabels(id);
  const selector = { [LABEL_REPL]: labels[LABEL_REPL]!, [LABEL_RUNNER]: labels[LABEL_RUNNER]! };
  return buildNetworkPolicy(ownedMeta(settings, id, owner), selector, settings.egress, policy);
}

export function buildService(settings: KubernetesDriverSettings, id: ReplIdentity, owner: V1OwnerReference): V1Service {
  const labels = replLabels(id);
  const ports = [{ name: "http", port: RUNNER_PORT, targetPort: "http", protocol: "TCP" }];
  if (settings.mcpImage) ports.push({ name: "mcp", port: MCP_PORT, targetPort: "mcp", protocol: "TCP" });
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: ownedMeta(settings, id, owner),
    spec: {
      type: "ClusterIP",
      selector: { [LABEL_REPL]: labels[LABEL_REPL], [LABEL_RUNNER]: labels[LABEL_RUNNER] },
      ports,
    },
  };
}

/** Traefik's Middleware custom resource (traefik.io/v1alpha1); no generated type exists for it. */
export interface TraefikMiddleware {
  apiVersion: "traefik.io/v1alpha1";
  kind: "Middleware";
  metadata: ReturnType<typeof ownedMeta>;
  spec: { stripPrefix: { prefixes: string[] } };
}

export function buildMiddleware(
  settings: KubernetesDriverSettings,
  id: ReplIdentity,
  owner: V1OwnerReference,
): TraefikMiddleware {
  return {
    apiVersion: `${MIDDLEWARE_GROUP}/${MIDDLEWARE_VERSION}` as "traefik.io/v1alpha1",
    kind: "Middleware",
    metadata: ownedMeta(settings, id, owner),
    spec: { stripPrefix: { prefixes: [`/${id.replId}`] } },
  };
}

/** Traefik's IngressRoute custom resource (traefik.io/v1alpha1), the parts Devex uses. */
export interface TraefikIngressRoute {
  apiVersion: "traefik.io/v1alpha1";
  kind: "IngressRoute";
  metadata: ReturnType<typeof ownedMeta>;
  spec: {
    routes: {
      kind: "Rule";
      match: string;
      priority: number;
      middlewares?: { name: string }[];
      services: { name: string; port: string; scheme: "h2c" }[];
    }[];
    tls?: { secretName: string };
  };
}

/**
 * The HTTP/2 routes to a runner, beside the Ingress (which Traefik serves over HTTP/1.1 to the
 * Service, as the WebSocket bridge needs): gRPC and Connect's streaming content types under
 * /<replId>/ (prefix stripped by the Middleware), and calls that name the repl in the devex-repl-id
 * header, as plain gRPC clients do, whatever their path. Both go to the runner over h2c; the
 * priority puts them ahead of the Ingress's path rule.
 */
export function buildGrpcRoute(
  settings: KubernetesDriverSettings,
  id: ReplIdentity,
  owner: V1OwnerReference,
): TraefikIngressRoute {
  const meta = ownedMeta(settings, id, owner);
  const host = new URL(settings.runnerBaseUrl).hostname;
  const service = { name: meta.name, port: "http", scheme: "h2c" as const };
  return {
    apiVersion: `${MIDDLEWARE_GROUP}/${MIDDLEWARE_VERSION}` as "traefik.io/v1alpha1",
    kind: "IngressRoute",
    metadata: meta,
    spec: {
      routes: [
        {
          kind: "Rule",
          match: `Host(\`${host}\`) && PathPrefix(\`/${id.replId}/\`) && HeaderRegexp(\`Content-Type\`, \`^application/(grpc|connect\\+)\`)`,
          priority: 1000,
          middlewares: [{ name: meta.name }],
          services: [service],
        },
        {
          kind: "Rule",
          match: `Host(\`${host}\`) && Header(\`Devex-Repl-Id\`, \`${id.replId}\`)`,
          priority: 1001,
          services: [service],
        },
      ],
      ...(settings.ingressTlsSecret && { tls: { secretName: settings.ingressTlsSecret } }),
    },
  };
}

export function buildIngress(settings: KubernetesDriverSettings, id: ReplIdentity, owner: V1OwnerReference): V1Ingress {
  const meta = ownedMeta(settings, id, owner);
  const host = new URL(settings.runnerBaseUrl).hostname;
  const backend = { service: { name: meta.name, port: { name: "http" } } };
  // The repl's own preview origin: its previews, and nothing else of the runner, on <replId>.<preview host>.
  const previewHost = settings.previewBaseUrl && new URL(previewOriginFor(settings.previewBaseUrl, id.replId)).hostname;
  const hosts = previewHost ? [host, previewHost] : [host];
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      ...meta,
      annotations: {
        // <namespace>-<name>@kubernetescrd is how Traefik names a Middleware from the CRD provider.
        "traefik.ingress.kubernetes.io/router.middlewares": `${settings.namespace}-${meta.name}@kubernetescrd`,
      },
    },
    spec: {
      ingressClassName: settings.ingressClassName,
      tls: settings.ingressTlsSecret ? [{ hosts, secretName: settings.ingressTlsSecret }] : undefined,
      rules: [
        { host, http: { paths: [{ path: `/${id.replId}`, pathType: "Prefix", backend }] } },
        ...(previewHost
          ? [{ host: previewHost, http: { paths: [{ path: "/preview/", pathType: "Prefix", backend }] } }]
          : []),
      ],
    },
  };
}

/**
 * The persist sidecar: lib/sync persist every interval and on core's request (PERSIST_PORT). It
 * reads the trees (mounted read-only) as the repl's uid and alone holds the blob store's credentials.
 */
function persistSidecar(settings: KubernetesDriverSettings, id: ReplIdentity): V1Container {
  const [, , , node, cli, , ...args] = syncCommand("persist", id);
  return {
    name: "persist",
    image: settings.runnerImage,
    imagePullPolicy: settings.imagePullPolicy,
    command: [
      node!,
      cli!,
      "serve",
      ...args,
      "--interval",
      String(settings.persist.intervalSeconds),
      "--port",
      String(PERSIST_PORT),
    ],
    ports: [{ name: "persist", containerPort: PERSIST_PORT, protocol: "TCP" }],
    env: [
      ...syncEnv(settings),
      { name: "DEVEX_TOKEN_PUBLIC_KEY", value: settings.tokenPublicKeyPem },
      { name: "DEVEX_REPL_ID", value: id.replId },
    ],
    envFrom: syncEnvFrom(settings),
    volumeMounts: syncMounts().map((m) =>
      m.name === "workspaces" || m.name === "home" ? { ...m, readOnly: true } : m,
    ),
    // lib/sync streams files and keeps only the manifest in memory; half a CPU paces a big upload
    // without taking the runner's share of the node.
    resources: {
      requests: { cpu: "20m", memory: "64Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    },
    securityContext: restrictedSecurityContext(true),
  };
}

/** The ephemeral container stop injects: persists the workspace and the home with lib/sync, then exits. */
export function buildPersistContainer(
  settings: KubernetesDriverSettings,
  id: Pick<ReplIdentity, "replId" | "workspacePrefix" | "homePrefix">,
  name: string,
): V1EphemeralContainer {
  return {
    name,
    image: settings.runnerImage,
    imagePullPolicy: settings.imagePullPolicy,
    command: syncCommand("persist", id),
    env: syncEnv(settings),
    envFrom: syncEnvFrom(settings),
    volumeMounts: syncMounts(),
    securityContext: restrictedSecurityContext(true),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

/** Drops undefined fields, as JSON serialisation would; validators see exactly what is sent. */
export function plain<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}
