/**
 * The Kubernetes runtime driver: each repl is a Deployment (restore init container, runner, optional
 * MCP sidecar) plus a NetworkPolicy, Secret, Service, Traefik Middleware and Ingress owned by it
 * (objects.ts). One file per operation: start.ts (create, wait for Ready, clean up on failure),
 * stop.ts (persist by the pod's persist sidecar or an ephemeral container, then delete), set-egress.ts (patch the
 * NetworkPolicy); status and list read Deployments by label, and core's reconciliation adopts those
 * an active session points at and stops the rest.
 *
 * The API clients come from outside (apis.ts), so tests run the real client against a fake server.
 * Concurrency follows ../driver.ts: core serialises calls per repl; calls for different repls share
 * nothing but the clients.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import type { Driver, RunnerInfo } from "../driver.js";
import type { KubernetesApis } from "./apis.js";
import { createCluster } from "./cluster.js";
import {
  ANNOTATION_REPL,
  ANNOTATION_RUNNER,
  ANNOTATION_URL,
  type KubernetesDriverSettings,
  LABEL_REPL,
  LABEL_RUNNER,
  managedSelector,
  runnerSelector,
} from "./objects.js";
import { checkServerVersion } from "./server-version.js";
import { setEgress } from "./set-egress.js";
import { startRunner } from "./start.js";
import { persistRunner, stopRunner } from "./stop.js";

export interface KubernetesDriverDeps {
  apis: KubernetesApis;
  settings: KubernetesDriverSettings;
  log?: Logger;
  /** How long start waits for the pod to become Ready (default 3 minutes). */
  readyTimeoutMs?: number;
  /** How long stop waits for the persist container (default 10 minutes). */
  persistTimeoutMs?: number;
  /** Poll period while waiting (default 1 s). */
  pollIntervalMs?: number;
  /** Mints the token core's stop sends a pod's persist sidecar; required with settings.persist.mode "sidecar". */
  signer?: TokenSigner;
  /** Where a pod's persist sidecar answers (tests); default http://<pod IP>:PERSIST_PORT. */
  persistUrl?: (pod: V1Pod) => string | undefined;
}

export function createKubernetesDriver(deps: KubernetesDriverDeps): Driver {
  const cluster = createCluster({
    apis: deps.apis,
    settings: deps.settings,
    log: deps.log,
    readyTimeoutMs: deps.readyTimeoutMs ?? 180_000,
    persistTimeoutMs: deps.persistTimeoutMs ?? 600_000,
    pollIntervalMs: deps.pollIntervalMs ?? 1000,
    signer: deps.signer,
    persistUrl: deps.persistUrl,
  });
  // Checked once, before the first start or stop; a failed check (unreachable) is tried again.
  let checked: Promise<unknown> | undefined;
  const serverChecked = (signal: AbortSignal) => {
    checked ??= checkServerVersion(deps.apis, deps.settings.persist.mode, signal).then(
      (version) => deps.log?.info({ version }, "Kubernetes API server"),
      (err) => {
        checked = undefined;
        throw err;
      },
    );
    return checked;
  };
  const stop: Driver["stop"] = async (req, signal, progress) => {
    await serverChecked(signal);
    return stopRunner(cluster, req, signal, progress);
  };
  return {
    previewUrl: deps.settings.previewBaseUrl,
    async start(req, signal, progress) {
      await serverChecked(signal);
      return startRunner(cluster, stop, req, signal, progress);
    },
    stop,
    async persist(req, signal, progress) {
      await serverChecked(signal);
      return persistRunner(cluster, req, signal, progress);
    },
    setEgress: (change, signal) => setEgress(cluster, change, signal),
    async status(runnerId, signal) {
      return (await cluster.findDeployments(runnerSelector(runnerId), signal)).length > 0 ? "running" : "stopped";
    },
    async list(signal): Promise<RunnerInfo[]> {
      return (await cluster.findDeployments(managedSelector, signal)).map((d) => ({
        runnerId: d.metadata?.annotations?.[ANNOTATION_RUNNER] ?? d.metadata?.labels?.[LABEL_RUNNER] ?? "",
        replId: d.metadata?.annotations?.[ANNOTATION_REPL] ?? d.metadata?.labels?.[LABEL_REPL] ?? "",
        url: d.metadata?.annotations?.[ANNOTATION_URL] ?? "",
      }));
    },
  };
}
