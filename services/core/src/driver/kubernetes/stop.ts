/**
 * stop: persist first, then tear down. The pod's persist sidecar (settings.persist "sidecar") is
 * asked to persist now, or (mode "ephemeral") an ephemeral container injected into the running pod
 * runs lib/sync persist of /workspaces; only after it succeeded is the Deployment deleted (the rest
 * cascades). A failure or timeout deletes nothing and throws Unavailable with the reason; the next
 * stop first waits for a persist container still running from an earlier attempt (two uploads never
 * race on one manifest), then injects a fresh one. A pod whose restore never finished is deleted
 * without persisting: the blob store is newer than it. Stopping a runner that is gone succeeds.
 * A stop returns once the runner's pods are gone, so nothing of it writes to the blob store after.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { failedPrecondition, unavailable } from "../../../../../lib/kit/errors.js";
import type { DriverProgress, PersistRequest, StopRequest, StopResult } from "../driver.js";
import { withSignal } from "./apis.js";
import { type Cluster, detailOf, kubeCause, restored, seconds, syncCounts } from "./cluster.js";
import { isConflict } from "./errors.js";
import { buildPersistContainer, runnerSelector } from "./objects.js";

export async function stopRunner(
  c: Cluster,
  req: StopRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<StopResult> {
  const deployments = await c.findDeployments(runnerSelector(req.runnerId), signal);
  if (deployments.length === 0) {
    await awaitPodsGone(c, req, signal);
    return { persistTime: Date.now() };
  }
  if (req.persist !== false) {
    const pod = await restoredPod(c, req, signal);
    if (pod) await persistPod(c, req, pod, signal, progress);
    else c.log?.info({ replId: req.replId }, "no restored workspace to persist; the blob store is up to date");
  }
  progress?.({ phase: "teardown" });
  for (const d of deployments) await c.deleteDeployment(d.metadata!.name!, signal);
  await awaitPodsGone(c, req, signal);
  return { persistTime: Date.now() };
}

const restoredPod = async (c: Cluster, req: PersistRequest, signal: AbortSignal) =>
  (await c.findPods(req.runnerId, signal)).find((p) => p.status?.phase === "Running" && restored(p));

/** "watched": a running repl's persist, which the sidecar may do without a walk when nothing changed. */
function persistPod(
  c: Cluster,
  req: StopRequest,
  pod: V1Pod,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
  how: "watched" | "full" = "full",
) {
  if (c.settings.persist.mode === "sidecar") return persistBySidecar(c, req, pod, signal, progress, how);
  return persist(c, req, pod, signal, progress);
}

/** The reason a persist that is not a stop's carries (a checkpoint of a running repl). */
const PERSIST_ON_REQUEST = "persist on request";

/** What a failed persist's message tells the user to do: a stop's is retried by stopping again. */
const retryHint = (req: StopRequest) =>
  req.reason === PERSIST_ON_REQUEST ? "nothing was changed — try again" : "nothing was deleted — stop again to retry";

/** Persists a running runner's trees as a stop's first step does, and leaves it running. */
export async function persistRunner(
  c: Cluster,
  req: PersistRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<StopResult> {
  const pod = await restoredPod(c, req, signal);
  if (!pod) throw failedPrecondition(`repl ${req.replId} has no running, restored pod to persist`);
  await persistPod(c, { ...req, reason: PERSIST_ON_REQUEST }, pod, signal, progress, "watched");
  return { persistTime: Date.now() };
}

/** A pod's grace period (objects.ts) and time for the garbage collector and the kubelet to act. */
const POD_GONE_TIMEOUT_MS = 45_000;

/**
 * Returns once no pod of the runner is left. Until then its persist sidecar may still upload (a
 * periodic persist, up to the SIGTERM): a deleted repl's files would come back after core removed
 * them, and a restarted repl's new pod would share the prefix with a second writer.
 */
async function awaitPodsGone(c: Cluster, req: StopRequest, signal: AbortSignal) {
  const deadline = Date.now() + POD_GONE_TIMEOUT_MS;
  for (;;) {
    const left = await c.findPods(req.runnerId, signal, true);
    if (left.length === 0) return;
    if (Date.now() > deadline)
      throw unavailable(
        `the pod of repl ${req.replId} is still terminating after ${seconds(POD_GONE_TIMEOUT_MS)}; its Deployment is deleted — stop again to wait for it`,
      );
    await c.pause(signal);
  }
}

async function persist(
  c: Cluster,
  req: StopRequest,
  pod: V1Pod,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
) {
  const podName = pod.metadata!.name!;
  const deadline = Date.now() + c.persistTimeoutMs;
  const retry = retryHint(req);
  progress?.({ phase: "persist" });
  const earlier = (pod.status?.ephemeralContainerStatuses ?? []).filter(
    (s) => s.name.startsWith("persist-") && !s.state?.terminated,
  );
  for (const s of earlier) {
    const { terminated, state } = await awaitTermination(c, podName, s.name, deadline, signal);
    if (!terminated)
      throw unavailable(
        `an earlier persist of repl ${req.replId} is still running (${state}) after ${seconds(c.persistTimeoutMs)}; ${retry}`,
      );
  }
  const container = `persist-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  await inject(c, pod, container, req, signal);
  const { terminated: done, state } = await awaitTermination(c, podName, container, deadline, signal);
  if (!done)
    throw unavailable(
      `persisting the workspace of repl ${req.replId} did not finish within ${seconds(c.persistTimeoutMs)} (${state}); ${retry}`,
    );
  if (done.exitCode !== 0) {
    const detail = detailOf(done);
    throw unavailable(
      `persisting the workspace of repl ${req.replId} failed (exit code ${done.exitCode}${detail ? `: ${detail}` : ""}); the runner keeps running and ${retry}`,
    );
  }
  const counts = syncCounts(done.message);
  if (counts) progress?.({ phase: "persist", ...counts });
}

/** Asks the pod's persist sidecar for a persist that starts now, and waits for its counts. */
async function persistBySidecar(
  c: Cluster,
  req: StopRequest,
  pod: V1Pod,
  signal: AbortSignal,
  progress: ((p: DriverProgress) => void) | undefined,
  how: "watched" | "full",
) {
  const retry = retryHint(req);
  const url = c.persistUrl(pod);
  if (!c.signer || !url) throw unavailable(`the persist sidecar of repl ${req.replId} cannot be reached; ${retry}`);
  progress?.({ phase: "persist" });
  const token = c.signer.mint({ aud: "runner-admin", sub: "core", repl: req.replId, scope: ["persist"] }, 600);
  let res: Response;
  try {
    const ask = (path: string) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.any([signal, AbortSignal.timeout(c.persistTimeoutMs)]),
      });
    res = await ask(how === "watched" ? "/persist?how=watched" : "/persist");
    // A sidecar of an older image knows only the walking persist.
    if (res.status === 404 && how === "watched") {
      await res.body?.cancel();
      res = await ask("/persist");
    }
  } catch (err) {
    if (signal.aborted) throw err;
    const timedOut = (err as Error).name === "TimeoutError";
    throw unavailable(
      timedOut
        ? `persisting the workspace of repl ${req.replId} did not finish within ${seconds(c.persistTimeoutMs)}; ${retry}`
        : `the persist sidecar of repl ${req.replId} could not be reached; ${retry}`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; files?: number };
  if (!res.ok) {
    c.log?.warn({ replId: req.replId, status: res.status, error: body.error }, "the persist sidecar failed");
    throw unavailable(
      `persisting the workspace of repl ${req.replId} failed (HTTP ${res.status}); the runner keeps running and ${retry}`,
    );
  }
  const counts = syncCounts(JSON.stringify(body));
  if (counts) progress?.({ phase: "persist", ...counts });
}

/** Adds the persist container through pods/ephemeralcontainers, re-reading on 409 Conflict. */
async function inject(c: Cluster, pod: V1Pod, container: string, req: StopRequest, signal: AbortSignal) {
  const name = pod.metadata!.name!;
  let current = pod;
  for (let attempt = 0; ; attempt++) {
    const ephemeralContainers = [
      ...(current.spec?.ephemeralContainers ?? []),
      buildPersistContainer(c.settings, req, container),
    ];
    const body: V1Pod = { ...current, spec: { ...current.spec!, ephemeralContainers } };
    try {
      await c.call("update", "pods/ephemeralcontainers", () =>
        c.apis.core.replaceNamespacedPodEphemeralcontainers({ name, namespace: c.ns, body }, withSignal(signal)),
      );
      return;
    } catch (err) {
      if (!isConflict(kubeCause(err)) || attempt >= 5) throw err;
      current = await c.call("get", "pods", () =>
        c.apis.core.readNamespacedPod({ name, namespace: c.ns }, withSignal(signal)),
      );
    }
  }
}

/** Polls until ephemeral container `name` terminated; `terminated` is undefined past the deadline. */
async function awaitTermination(c: Cluster, podName: string, name: string, deadline: number, signal: AbortSignal) {
  let state = "not started";
  while (Date.now() <= deadline) {
    await c.pause(signal);
    const pod = await c.call("get", "pods", () =>
      c.apis.core.readNamespacedPod({ name: podName, namespace: c.ns }, withSignal(signal)),
    );
    const s = pod.status?.ephemeralContainerStatuses?.find((x) => x.name === name);
    if (s?.state?.terminated) return { terminated: s.state.terminated, state };
    state = s?.state?.waiting?.reason ?? (s?.state?.running ? "running" : state);
  }
  return { terminated: undefined, state };
}
