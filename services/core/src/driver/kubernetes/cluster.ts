/**
 * What the lifecycle operations share: the API clients bound to the repl namespace, error mapping
 * for every call, the label queries, and how a pod's restore and readiness are read.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import type { DriverProgress } from "../driver.js";
import { type KubernetesApis, withSignal } from "./apis.js";
import { isNotFound, kubeError, kubeStatus } from "./errors.js";
import { type KubernetesDriverSettings, PERSIST_PORT, runnerSelector } from "./objects.js";

export interface Cluster {
  apis: KubernetesApis;
  settings: KubernetesDriverSettings;
  ns: string;
  log?: Logger;
  readyTimeoutMs: number;
  persistTimeoutMs: number;
  /** Mints core's token for a pod's persist sidecar (audience runner-admin, its repl). */
  signer?: TokenSigner;
  /** Where a pod's persist sidecar answers: its pod IP by default (tests: where it runs). */
  persistUrl: (pod: V1Pod) => string | undefined;
  /** Waits one poll period (honouring the signal). */
  pause(signal: AbortSignal): Promise<void>;
  /** Runs one API call; failures become DomainErrors (kubeError) that keep the API error as kubeCause. */
  call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T>;
  findDeployments(selector: string, signal: AbortSignal): Promise<V1Deployment[]>;
  /** The runner's pods; those being deleted only with `terminating`. */
  findPods(runnerId: string, signal: AbortSignal, terminating?: boolean): Promise<V1Pod[]>;
  /** Deletes a Deployment (Background propagation: the garbage collector removes what it owns). */
  deleteDeployment(name: string, signal: AbortSignal): Promise<void>;
}

/** The API error behind a DomainError thrown by Cluster.call. */
export const kubeCause = (err: unknown) => (err as { kubeCause?: unknown }).kubeCause;

export function createCluster(o: {
  apis: KubernetesApis;
  settings: KubernetesDriverSettings;
  log?: Logger;
  readyTimeoutMs: number;
  persistTimeoutMs: number;
  pollIntervalMs: number;
  signer?: TokenSigner;
  persistUrl?: (pod: V1Pod) => string | undefined;
}): Cluster {
  const ns = o.settings.namespace;
  const cluster: Cluster = {
    ...o,
    ns,
    persistUrl:
      o.persistUrl ?? ((pod) => (pod.status?.podIP ? `http://${pod.status.podIP}:${PERSIST_PORT}` : undefined)),
    pause: (signal) => sleep(o.pollIntervalMs, undefined, { signal }),
    async call(verb, resource, fn) {
      try {
        return await fn();
      } catch (err) {
        const status = kubeStatus(err);
        // The cluster's own words go to core's log only (clients get kubeError's).
        if (status?.code === 403) o.log?.warn({ verb, resource, message: status.message }, "the cluster refused");
        throw Object.assign(kubeError(err, verb, resource, ns), { kubeCause: err });
      }
    },
    async findDeployments(selector, signal) {
      const list = await cluster.call("list", "deployments", () =>
        o.apis.apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector }, withSignal(signal)),
      );
      return list.items.filter((d) => !d.metadata?.deletionTimestamp);
    },
    async findPods(runnerId, signal, terminating = false) {
      const list = await cluster.call("list", "pods", () =>
        o.apis.core.listNamespacedPod({ namespace: ns, labelSelector: runnerSelector(runnerId) }, withSignal(signal)),
      );
      return terminating ? list.items : list.items.filter((p) => !p.metadata?.deletionTimestamp);
    },
    async deleteDeployment(name, signal) {
      try {
        await cluster.call("delete", "deployments", () =>
          o.apis.apps.deleteNamespacedDeployment(
            { name, namespace: ns, propagationPolicy: "Background" },
            withSignal(signal),
          ),
        );
      } catch (err) {
        if (!isNotFound(kubeCause(err))) throw err;
      }
    },
  };
  return cluster;
}

export const restoreStatus = (pod: V1Pod) => pod.status?.initContainerStatuses?.find((s) => s.name === "restore");
/** The restore init container exited 0: /workspaces holds the repl's files. */
export const restored = (pod: V1Pod) => restoreStatus(pod)?.state?.terminated?.exitCode === 0;
export const isReady = (pod: V1Pod) =>
  pod.status?.phase === "Running" && !!pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");

/** File counts from lib/sync's JSON result (a sync container's termination message). */
export function syncCounts(message: string | undefined): Omit<DriverProgress, "phase"> | undefined {
  try {
    const r = JSON.parse(message ?? "") as { files?: unknown; bytes?: unknown };
    if (typeof r.files !== "number" || typeof r.bytes !== "number") return undefined;
    return { filesDone: r.files, filesTotal: r.files, bytesDone: r.bytes, bytesTotal: r.bytes };
  } catch {
    return undefined;
  }
}

/** The tail of a container's termination message (lib/sync's error, or its log tail). */
export const detailOf = (t: { message?: string; reason?: string }) => (t.message ?? t.reason ?? "").trim().slice(-300);

export const seconds = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);
