/**
 * The Kubernetes runtime driver: each repl is a Deployment (restore init container, runner, optional
 * MCP sidecar) plus a Secret, Service, Traefik Middleware and Ingress owned by it (objects.ts).
 *
 * - start creates the Deployment, then the owned objects, and waits until the pod is Ready; a failed
 *   restore fails fast, anything else fails at the readiness timeout with the pod's last state.
 *   Whatever fails, the Deployment is deleted (and the garbage collector takes the rest).
 * - stop injects an ephemeral container that persists /workspaces with lib/sync and waits for it to
 *   exit 0 BEFORE deleting anything. If it fails or times out nothing is deleted and stop throws
 *   Unavailable with the reason; the next stop injects a fresh container. A pod whose restore never
 *   finished has nothing newer than the blob store, so it is deleted without persisting.
 * - status/list read Deployments by label; core's reconciliation adopts the ones an active session
 *   points at and stops the rest.
 *
 * The API clients come from outside (apis.ts), so tests run the real client against a fake server.
 * Concurrency follows driver.ts: core serialises calls per repl; calls for different repls share
 * nothing but the clients.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { deadlineExceeded, unavailable } from "../../../../../lib/kit/errors.js";
import type { Driver, DriverProgress, RunnerInfo, StartRequest, StopRequest } from "../driver.js";
import { type KubernetesApis, withSignal } from "./apis.js";
import { isAlreadyExists, isConflict, isNotFound, kubeError } from "./errors.js";
import {
  ANNOTATION_REPL,
  ANNOTATION_RUNNER,
  ANNOTATION_URL,
  buildDeployment,
  buildIngress,
  buildMiddleware,
  buildPersistContainer,
  buildSecret,
  buildService,
  type KubernetesDriverSettings,
  LABEL_REPL,
  LABEL_RUNNER,
  MIDDLEWARE_GROUP,
  MIDDLEWARE_PLURAL,
  MIDDLEWARE_VERSION,
  managedSelector,
  objectName,
  ownerReference,
  type ReplIdentity,
  runnerSelector,
  runnerUrl,
} from "./objects.js";

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
}

/** File counts from lib/sync's JSON result (the sync container's termination message). */
function syncCounts(message: string | undefined): Omit<DriverProgress, "phase"> | undefined {
  try {
    const r = JSON.parse(message ?? "") as { files?: unknown; bytes?: unknown; transferred?: unknown };
    if (typeof r.files !== "number" || typeof r.bytes !== "number") return undefined;
    return { filesDone: r.files, filesTotal: r.files, bytesDone: r.bytes, bytesTotal: r.bytes };
  } catch {
    return undefined;
  }
}

const seconds = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);

export function createKubernetesDriver(deps: KubernetesDriverDeps): Driver {
  const { apis, settings } = deps;
  const ns = settings.namespace;
  const readyTimeoutMs = deps.readyTimeoutMs ?? 180_000;
  const persistTimeoutMs = deps.persistTimeoutMs ?? 600_000;
  const poll = deps.pollIntervalMs ?? 1000;

  /** Runs one API call; failures become DomainErrors (kubeError) that keep the API error as kubeCause. */
  async function call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw Object.assign(kubeError(err, verb, resource, ns), { kubeCause: err });
    }
  }
  const cause = (err: unknown) => (err as { kubeCause?: unknown }).kubeCause;

  async function findDeployments(selector: string, signal: AbortSignal): Promise<V1Deployment[]> {
    const list = await call("list", "deployments", () =>
      apis.apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector }, withSignal(signal)),
    );
    return list.items.filter((d) => !d.metadata?.deletionTimestamp);
  }

  async function findPods(runnerId: string, signal: AbortSignal): Promise<V1Pod[]> {
    const list = await call("list", "pods", () =>
      apis.core.listNamespacedPod({ namespace: ns, labelSelector: runnerSelector(runnerId) }, withSignal(signal)),
    );
    return list.items.filter((p) => !p.metadata?.deletionTimestamp);
  }

  async function deleteDeployment(name: string, signal: AbortSignal): Promise<void> {
    try {
      await call("delete", "deployments", () =>
        apis.apps.deleteNamespacedDeployment(
          { name, namespace: ns, propagationPolicy: "Background" },
          withSignal(signal),
        ),
      );
    } catch (err) {
      if (!isNotFound(cause(err))) throw err;
    }
  }

  /**
   * Creates an object owned by the new Deployment. AlreadyExists means the previous runner's object
   * has not been garbage-collected yet: try again until the deadline.
   */
  async function createOwned(resource: string, create: () => Promise<unknown>, deadline: number, signal: AbortSignal) {
    for (;;) {
      try {
        await call("create", resource, create);
        return;
      } catch (err) {
        if (!isAlreadyExists(cause(err)) || Date.now() > deadline) throw err;
        await sleep(poll, undefined, { signal });
      }
    }
  }

  function describePod(pod: V1Pod | undefined): string {
    if (!pod) return "no pod was created (check the Deployment's events and quotas)";
    const parts = [`pod ${pod.status?.phase ?? "Pending"}`];
    for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const waiting = s.state?.waiting?.reason;
      const running = s.state?.running ? "running" : undefined;
      const terminated = s.state?.terminated ? `exited ${s.state.terminated.exitCode}` : undefined;
      parts.push(`${s.name} ${waiting ?? running ?? terminated ?? "waiting"}${s.ready ? " (ready)" : ""}`);
    }
    const unschedulable = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
    if (unschedulable) parts.push(`unschedulable: ${unschedulable.reason ?? ""}`);
    return parts.join(", ");
  }

  const restoreStatus = (pod: V1Pod) => pod.status?.initContainerStatuses?.find((s) => s.name === "restore");
  const restored = (pod: V1Pod) => restoreStatus(pod)?.state?.terminated?.exitCode === 0;
  const isReady = (pod: V1Pod) =>
    pod.status?.phase === "Running" && !!pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");

  async function waitReady(
    req: StartRequest,
    deadline: number,
    signal: AbortSignal,
    progress?: (p: DriverProgress) => void,
  ): Promise<void> {
    let last: V1Pod | undefined;
    let phase = "";
    let countsReported = false;
    const report = (p: string) => {
      if (p === phase) return;
      phase = p;
      progress?.({ phase });
    };
    while (Date.now() <= deadline) {
      const pod = (await findPods(req.runnerId, signal))[0];
      last = pod ?? last;
      if (pod) {
        const init = restoreStatus(pod);
        const failed = [init?.state?.terminated, init?.lastState?.terminated].find((t) => t && t.exitCode !== 0);
        if (failed) {
          const detail = (failed.message ?? failed.reason ?? "").trim().slice(-300);
          throw unavailable(
            `restoring the workspace of repl ${req.replId} failed (exit code ${failed.exitCode}${detail ? `: ${detail}` : ""})`,
          );
        }
        if (restored(pod) && !countsReported) {
          const counts = syncCounts(init?.state?.terminated?.message);
          if (counts) progress?.({ phase: "restore", ...counts });
          countsReported = true;
        }
        if (isReady(pod)) return;
        report(restored(pod) ? "start" : "restore");
      }
      await sleep(poll, undefined, { signal });
    }
    throw deadlineExceeded(
      `the runner of repl ${req.replId} was not ready within ${seconds(readyTimeoutMs)} (${describePod(last)})`,
    );
  }

  async function removeForeignRunner(req: StartRequest, existing: V1Deployment, signal: AbortSignal) {
    const runnerId =
      existing.metadata?.annotations?.[ANNOTATION_RUNNER] ?? existing.metadata?.labels?.[LABEL_RUNNER] ?? "";
    deps.log?.warn(
      { replId: req.replId, runnerId },
      "an older runner of this repl is still deployed; stopping it first",
    );
    await driver.stop({ ...req, runnerId, reason: "replaced by a new runner" }, signal);
  }

  async function cleanUpFailedStart(runnerId: string) {
    const cleanup = AbortSignal.timeout(30_000);
    for (const d of await findDeployments(runnerSelector(runnerId), cleanup))
      await deleteDeployment(d.metadata!.name!, cleanup);
  }

  /** Creates the Deployment; an older runner of the same repl (AlreadyExists) is stopped — persisted — first. */
  async function createDeployment(req: StartRequest, body: V1Deployment, signal: AbortSignal) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call("create", "deployments", () =>
          apis.apps.createNamespacedDeployment({ namespace: ns, body }, withSignal(signal)),
        );
      } catch (err) {
        if (!isAlreadyExists(cause(err)) || attempt > 0) throw err;
        const existing = await findDeployments(
          `${managedSelector},${LABEL_REPL}=${body.metadata!.labels![LABEL_REPL]}`,
          signal,
        );
        for (const d of existing) await removeForeignRunner(req, d, signal);
      }
    }
  }

  async function start(req: StartRequest, signal: AbortSignal, progress?: (p: DriverProgress) => void) {
    const id: ReplIdentity = req;
    const name = objectName(req.replId);
    const url = runnerUrl(settings, req.replId);
    const deadline = Date.now() + readyTimeoutMs;
    progress?.({ phase: "schedule" });
    const body = buildDeployment(settings, id, settings.coreUrl ?? req.coreUrl, url);
    try {
      const deployment = await createDeployment(req, body, signal);
      const owner = ownerReference(deployment);
      await createOwned(
        "secrets",
        () =>
          apis.core.createNamespacedSecret(
            { namespace: ns, body: buildSecret(settings, id, owner, req.controlToken) },
            withSignal(signal),
          ),
        deadline,
        signal,
      );
      await createOwned(
        "services",
        () =>
          apis.core.createNamespacedService(
            { namespace: ns, body: buildService(settings, id, owner) },
            withSignal(signal),
          ),
        deadline,
        signal,
      );
      await createOwned(
        MIDDLEWARE_PLURAL,
        () =>
          apis.custom.createNamespacedCustomObject(
            {
              group: MIDDLEWARE_GROUP,
              version: MIDDLEWARE_VERSION,
              namespace: ns,
              plural: MIDDLEWARE_PLURAL,
              body: buildMiddleware(settings, id, owner),
            },
            withSignal(signal),
          ),
        deadline,
        signal,
      );
      await createOwned(
        "ingresses",
        () =>
          apis.networking.createNamespacedIngress(
            { namespace: ns, body: buildIngress(settings, id, owner) },
            withSignal(signal),
          ),
        deadline,
        signal,
      );
      await waitReady(req, deadline, signal, progress);
    } catch (err) {
      // Nothing may keep running after a failed start. Found by label, not by the create's answer:
      // an aborted create may have reached the server. Deleting the Deployment cascades to the rest.
      await cleanUpFailedStart(req.runnerId).catch((e) =>
        deps.log?.error({ err: e, replId: req.replId }, "could not delete the Deployment of a failed start"),
      );
      throw err;
    }
    deps.log?.info({ replId: req.replId, runnerId: req.runnerId, deployment: name }, "runner ready");
    return { runnerId: req.runnerId, url };
  }

  /** Adds the persist container to the pod, retrying on resourceVersion conflicts. */
  async function injectPersist(pod: V1Pod, container: string, req: StopRequest, signal: AbortSignal) {
    const podName = pod.metadata!.name!;
    let current = pod;
    for (let attempt = 0; ; attempt++) {
      const body: V1Pod = {
        ...current,
        spec: {
          ...current.spec!,
          ephemeralContainers: [
            ...(current.spec?.ephemeralContainers ?? []),
            buildPersistContainer(settings, req, container),
          ],
        },
      };
      try {
        await call("update", "pods/ephemeralcontainers", () =>
          apis.core.replaceNamespacedPodEphemeralcontainers({ name: podName, namespace: ns, body }, withSignal(signal)),
        );
        return;
      } catch (err) {
        if (!isConflict(cause(err)) || attempt >= 5) throw err;
        current = await call("get", "pods", () =>
          apis.core.readNamespacedPod({ name: podName, namespace: ns }, withSignal(signal)),
        );
      }
    }
  }

  /** Polls the pod until ephemeral container `name` terminated; undefined when the deadline passed. */
  async function awaitTermination(podName: string, name: string, deadline: number, signal: AbortSignal) {
    let state = "not started";
    while (Date.now() <= deadline) {
      await sleep(poll, undefined, { signal });
      const now = await call("get", "pods", () =>
        apis.core.readNamespacedPod({ name: podName, namespace: ns }, withSignal(signal)),
      );
      const s = now.status?.ephemeralContainerStatuses?.find((c) => c.name === name);
      if (s?.state?.terminated) return { terminated: s.state.terminated, state };
      state = s?.state?.waiting?.reason ?? (s?.state?.running ? "running" : state);
    }
    return { terminated: undefined, state };
  }

  async function persist(req: StopRequest, pod: V1Pod, signal: AbortSignal, progress?: (p: DriverProgress) => void) {
    const podName = pod.metadata!.name!;
    const deadline = Date.now() + persistTimeoutMs;
    const retry = "nothing was deleted — stop again to retry";
    progress?.({ phase: "persist" });
    // A persist container of an earlier stop that timed out may still be uploading: let it finish
    // first, so two uploads never race on one manifest.
    const earlier = (pod.status?.ephemeralContainerStatuses ?? []).filter(
      (c) => c.name.startsWith("persist-") && !c.state?.terminated,
    );
    for (const c of earlier) {
      const { terminated, state } = await awaitTermination(podName, c.name, deadline, signal);
      if (!terminated)
        throw unavailable(
          `an earlier persist of repl ${req.replId} is still running (${state}) after ${seconds(persistTimeoutMs)}; ${retry}`,
        );
    }
    const container = `persist-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    await injectPersist(pod, container, req, signal);
    const { terminated: done, state } = await awaitTermination(podName, container, deadline, signal);
    if (!done)
      throw unavailable(
        `persisting the workspace of repl ${req.replId} did not finish within ${seconds(persistTimeoutMs)} (${state}); ${retry}`,
      );
    if (done.exitCode !== 0) {
      const detail = (done.message ?? done.reason ?? "").trim().slice(-300);
      throw unavailable(
        `persisting the workspace of repl ${req.replId} failed (exit code ${done.exitCode}${detail ? `: ${detail}` : ""}); the runner keeps running and ${retry}`,
      );
    }
    const counts = syncCounts(done.message);
    if (counts) progress?.({ phase: "persist", ...counts });
  }

  const driver: Driver = {
    start,

    async stop(req, signal, progress) {
      const deployments = await findDeployments(runnerSelector(req.runnerId), signal);
      if (deployments.length === 0) return { persistTime: Date.now() };
      if (req.persist !== false) {
        const pod = (await findPods(req.runnerId, signal)).find((p) => p.status?.phase === "Running" && restored(p));
        if (pod) await persist(req, pod, signal, progress);
        else deps.log?.info({ replId: req.replId }, "no restored workspace to persist; the blob store is up to date");
      }
      progress?.({ phase: "teardown" });
      for (const d of deployments) await deleteDeployment(d.metadata!.name!, signal);
      return { persistTime: Date.now() };
    },

    async status(runnerId, signal) {
      return (await findDeployments(runnerSelector(runnerId), signal)).length > 0 ? "running" : "stopped";
    },

    async list(signal): Promise<RunnerInfo[]> {
      return (await findDeployments(managedSelector, signal)).map((d) => ({
        runnerId: d.metadata?.annotations?.[ANNOTATION_RUNNER] ?? d.metadata?.labels?.[LABEL_RUNNER] ?? "",
        replId: d.metadata?.annotations?.[ANNOTATION_REPL] ?? d.metadata?.labels?.[LABEL_REPL] ?? "",
        url: d.metadata?.annotations?.[ANNOTATION_URL] ?? "",
      }));
    },
  };
  return driver;
}
