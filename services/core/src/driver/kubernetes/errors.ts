/**
 * Kubernetes API failures → DomainErrors with messages an operator can act on. The API server's
 * body never reaches a client: only its Status `reason`, the HTTP code and the fields it names.
 */
import { ApiException } from "@kubernetes/client-node";
import { type DomainError, failedPrecondition, unavailable } from "../../../../../lib/kit/errors.js";

export interface KubeStatus {
  code: number;
  reason: string;
  /** Field paths from details.causes (e.g. "spec.template.spec.containers[0].image"). */
  fields: string[];
  /** The server's own words: for core's log, never a client. */
  message: string;
}

/** The HTTP code and Status reason of an API error, or undefined when it is not an API error. */
export function kubeStatus(err: unknown): KubeStatus | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let body: unknown = err.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const status = (body ?? {}) as {
    reason?: unknown;
    message?: unknown;
    details?: { causes?: { field?: unknown }[] };
  };
  const fields = (status.details?.causes ?? []).map((c) => c.field).filter((f): f is string => typeof f === "string");
  return {
    code: err.code,
    reason: typeof status.reason === "string" ? status.reason : "",
    fields,
    message: typeof status.message === "string" ? status.message : "",
  };
}

export const isNotFound = (err: unknown) => kubeStatus(err)?.code === 404;
export const isAlreadyExists = (err: unknown) => {
  const s = kubeStatus(err);
  return s?.code === 409 && s.reason === "AlreadyExists";
};
export const isConflict = (err: unknown) => {
  const s = kubeStatus(err);
  return s?.code === 409 && s.reason !== "AlreadyExists";
};

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || (err as { type?: string }).type === "aborted");
}

/**
 * Maps a failed call (`verb` on `resource` in `namespace`) to a DomainError. Aborts are rethrown
 * unchanged so callers see the cancellation.
 */
export function kubeError(err: unknown, verb: string, resource: string, namespace: string): DomainError | Error {
  if (isAbort(err)) return err as Error;
  const s = kubeStatus(err);
  const what = `${verb} ${resource} in namespace "${namespace}"`;
  if (!s) return unavailable(`the Kubernetes API server could not be reached to ${what}; check its address`, err);
  if (s.code === 401)
    return failedPrecondition(`core's Kubernetes credentials were refused (401) to ${what}; check its kubeconfig`, err);
  if (s.code === 403) return failedPrecondition(forbidden(s.message, what), err);
  if (s.code === 404 && (resource === "middlewares" || resource === "ingressroutes"))
    return failedPrecondition(
      `cannot ${what}: Traefik's ${resource === "middlewares" ? "Middleware" : "IngressRoute"} CRD (traefik.io/v1alpha1) is missing; install Traefik (infra/k8s/traefik)`,
      err,
    );
  if (s.code === 404)
    return failedPrecondition(`cannot ${what}: the namespace or object does not exist (create infra/k8s first)`, err);
  if (s.code === 422 || s.code === 400)
    return failedPrecondition(
      `the cluster refused to ${what} (${s.reason || s.code}${s.fields.length ? `: ${s.fields.join(", ")}` : ""}); check the DEVEX_K8S_* settings`,
      err,
    );
  if (s.code === 409) return unavailable(`a concurrent change interfered while trying to ${what}; try again`, err);
  return unavailable(`the Kubernetes API server failed to ${what} (HTTP ${s.code}); try again`, err);
}

/**
 * What a 403 means, in core's words: RBAC (the API server names the service account and the verb),
 * or an admission check (quota, policy) that RBAC cannot fix.
 */
export function forbidden(message: string, what: string): string {
  if (/cannot \S+ resource/.test(message))
    return `core's service account may not ${what} (403 Forbidden); apply the RBAC in infra/k8s/base/rbac.yaml of this version`;
  return `an admission check of the cluster refused to ${what} (403 Forbidden${admissionCause(message)}); core's log has the cluster's words`;
}

/** The kind of admission refusal, from the API server's message (quota, Pod Security, ...). */
export function admissionCause(message: string): string {
  if (/exceeded quota/i.test(message)) return ": the namespace's ResourceQuota is used up";
  if (/violates PodSecurity/i.test(message)) return ": Pod Security admission, the namespace's pod-security level";
  if (/RuntimeClass/i.test(message)) return ": the pod's RuntimeClass does not exist (DEVEX_K8S_RUNTIME_CLASS)";
  if (/(maximum|minimum) (cpu|memory|ephemeral-storage)|LimitRange/i.test(message))
    return ": the namespace's LimitRange, which the runner's resources fall outside of";
  if (/blockOwnerDeletion/i.test(message))
    return ": OwnerReferencesPermissionEnforcement, which wants update on deployments/finalizers";
  return "";
}
