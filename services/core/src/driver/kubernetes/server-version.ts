/**
 * The API server's version, checked before the driver first starts or stops a runner. With
 * DEVEX_K8S_PERSIST=ephemeral the persist at stop adds an ephemeral container
 * (pods/ephemeralcontainers, GA in 1.25): on older servers that write is accepted and does nothing
 * (1.20 was seen to), so stop would wait out its whole persist timeout; refusing with the version is
 * better than that. The persist sidecar needs none of it: networking.k8s.io/v1 Ingress (1.19) is
 * the newest API the driver uses then.
 */
import { failedPrecondition } from "../../../../../lib/kit/errors.js";
import type { KubernetesApis } from "./apis.js";
import { withSignal } from "./apis.js";
import { kubeError } from "./errors.js";

export const MIN_SERVER_VERSION = { sidecar: [1, 19], ephemeral: [1, 25] } as const;

/** "1", "27+" (GKE, EKS) → [1, 27]; undefined when unreadable. */
export function parseServerVersion(major: string, minor: string): [number, number] | undefined {
  const ma = Number.parseInt(major, 10);
  const mi = Number.parseInt(minor, 10);
  return Number.isFinite(ma) && Number.isFinite(mi) ? [ma, mi] : undefined;
}

export async function checkServerVersion(
  apis: KubernetesApis,
  persist: keyof typeof MIN_SERVER_VERSION,
  signal: AbortSignal,
): Promise<string> {
  let info: { major: string; minor: string; gitVersion: string };
  try {
    info = await apis.version.getCode(withSignal(signal));
  } catch (err) {
    throw kubeError(err, "get", "the server's version", "");
  }
  const v = parseServerVersion(info.major, info.minor);
  const [needMajor, needMinor] = MIN_SERVER_VERSION[persist];
  if (!v || v[0] < needMajor || (v[0] === needMajor && v[1] < needMinor)) {
    const why =
      persist === "ephemeral"
        ? "with DEVEX_K8S_PERSIST=ephemeral: the persist at stop uses ephemeral containers; the default persist sidecar needs 1.19"
        : "for networking.k8s.io/v1 Ingresses";
    throw failedPrecondition(
      `the Kubernetes API server is ${info.gitVersion || `${info.major}.${info.minor}`}; Devex needs ${needMajor}.${needMinor} or later ${why}`,
    );
  }
  return info.gitVersion;
}
