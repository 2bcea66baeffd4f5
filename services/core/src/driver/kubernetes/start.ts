/**
 * start: the Deployment first (its uid is the owner of the rest), then the NetworkPolicy with the
 * repl's egress policy (until it exists the pod reaches only DNS and core: it fails closed), the
 * Secret, Service, Traefik Middleware and Ingress it owns, then wait until the pod is Ready. A failed
 * restore fails at once, and so does a pod the cluster refuses to create (the Deployment's
 * ReplicaFailure: quota, Pod Security, a missing RuntimeClass, a LimitRange, within about a second);
 * anything else at the readiness timeout, with the pod's last state. Whatever fails, the Deployment
 * is deleted — found by label, since an aborted create may still have reached the server — and the
 * garbage collector takes the rest. An older runner of the same repl (AlreadyExists) is stopped,
 * persisting first, before the new one is created.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { ALLOW_ALL } from "../../../../../lib/egress/policy.js";
import { deadlineExceeded, failedPrecondition, unavailable } from "../../../../../lib/kit/errors.js";
import type { DriverProgress, StartedRunner, StartRequest, StopRequest } from "../driver.js";
import { withSignal } from "./apis.js";
import { type Cluster, detailOf, isReady, kubeCause, restored, restoreStatus, seconds, syncCounts } from "./cluster.js";
import { admissionCause, isAlreadyExists } from "./errors.js";
import {
  ANNOTATION_RUNNER,
  buildDeployment,
  buildGrpcRoute,
  buildIngress,
  buildMiddleware,
  buildReplNetworkPolicy,
  buildSecret,
  buildService,
  INGRESS_ROUTE_PLURAL,
  LABEL_REPL,
  LABEL_RUNNER,
  MIDDLEWARE_GROUP,
  MIDDLEWARE_PLURAL,
  MIDDLEWARE_VERSION,
  managedSelector,
  objectName,
  ownerReference,
  runnerSelector,
  runnerUrl,
} from "./objects.js";

type Stop = (req: StopRequest, signal: AbortSignal) => Promise<unknown>;

export async function startRunner(
  c: Cluster,
  stop: Stop,
  req: StartRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<StartedRunner> {
  const { apis, settings, ns } = c;
  const url = runnerUrl(settings, req.replId);
  const deadline = Date.now() + c.readyTimeoutMs;
  progress?.({ phase: "schedule" });
  const body = buildDeployment(settings, req, settings.coreUrl ?? req.coreUrl, url);
  try {
    const owner = ownerReference(await createDeployment(c, stop, req, body, signal));
    const create = (resource: string, fn: () => Promise<unknown>) => createOwned(c, resource, fn, deadline, signal);
    const opts = withSignal(signal);
    await create("networkpolicies", () =>
      apis.networking.createNamespacedNetworkPolicy(
        { namespace: ns, body: buildReplNetworkPolicy(settings, req, owner, req.egress ?? ALLOW_ALL) },
        opts,
      ),
    );
    await create("secrets", () =>
      apis.core.createNamespacedSecret(
        { namespace: ns, body: buildSecret(settings, req, owner, req.controlToken) },
        opts,
      ),
    );
    await create("services", () =>
      apis.core.createNamespacedService({ namespace: ns, body: buildService(settings, req, owner) }, opts),
    );
    await create(MIDDLEWARE_PLURAL, () =>
      apis.custom.createNamespacedCustomObject(
        {
          group: MIDDLEWARE_GROUP,
          version: MIDDLEWARE_VERSION,
          namespace: ns,
          plural: MIDDLEWARE_PLURAL,
          body: buildMiddleware(settings, req, owner),
        },
        opts,
      ),
    );
    await create("ingresses", () =>
      apis.networking.createNamespacedIngress({ namespace: ns, body: buildIngress(settings, req, owner) }, opts),
    );
    await create(INGRESS_ROUTE_PLURAL, () =>
      apis.custom.createNamespacedCustomObject(
        {
          group: MIDDLEWARE_GROUP,
          version: MIDDLEWARE_VERSION,
          namespace: ns,
          plural: INGRESS_ROUTE_PLURAL,
          body: buildGrpcRoute(settings, req, owner),
        },
        opts,
      ),
    );
    await waitReady(c, req, deadline, signal, progress);
  } catch (err) {
    await cleanUp(c, req.runnerId).catch((e) =>
      c.log?.error({ err: e, replId: req.replId }, "could not delete the Deployment of a failed start"),
    );
    throw err;
  }
  c.log?.info({ replId: req.replId, runnerId: req.runnerId, deployment: objectName(req.replId) }, "runner ready");
  return { runnerId: req.runnerId, url };
}

async function createDeployment(c: Cluster, stop: Stop, req: StartRequest, body: V1Deployment, signal: AbortSignal) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await c.call("create", "deployments", () =>
        c.apis.apps.createNamespacedDeployment({ namespace: c.ns, body }, withSignal(signal)),
      );
    } catch (err) {
      if (!isAlreadyExists(kubeCause(err)) || attempt > 0) throw err;
      const selector = `${managedSelector},${LABEL_REPL}=${body.metadata!.labels![LABEL_REPL]}`;
      for (const d of await c.findDeployments(selector, signal)) {
        const runnerId = d.metadata?.annotations?.[ANNOTATION_RUNNER] ?? d.metadata?.labels?.[LABEL_RUNNER] ?? "";
        c.log?.warn(
          { replId: req.replId, runnerId },
          "an older runner of this repl is still deployed; stopping it first",
        );
        await stop({ ...req, runnerId, reason: "replaced by a new runner" }, signal);
      }
    }
  }
}

/** AlreadyExists here is the previous runner's object not yet garbage-collected: try again. */
async function createOwned(
  c: Cluster,
  resource: string,
  create: () => Promise<unknown>,
  deadline: number,
  signal: AbortSignal,
) {
  for (;;) {
    try {
      await c.call("create", resource, create);
      return;
    } catch (err) {
      if (!isAlreadyExists(kubeCause(err)) || Date.now() > deadline) throw err;
      await c.pause(signal);
    }
  }
}

async function cleanUp(c: Cluster, runnerId: string) {
  const signal = AbortSignal.timeout(30_000);
  for (const d of await c.findDeployments(runnerSelector(runnerId), signal))
    await c.deleteDeployment(d.metadata!.name!, signal);
}

async function waitReady(
  c: Cluster,
  req: StartRequest,
  deadline: number,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<void> {
  let last: V1Pod | undefined;
  let phase = "";
  let countsReported = false;
  while (Date.now() <= deadline) {
    const pod = (await c.findPods(req.runnerId, signal))[0];
    last = pod ?? last;
    if (!pod) await failIfRefused(c, req, signal);
    if (pod) {
      const init = restoreStatus(pod);
      const failed = [init?.state?.terminated, init?.lastState?.terminated].find((t) => t && t.exitCode !== 0);
      if (failed) {
        const detail = detailOf(failed);
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
      const now = restored(pod) ? "start" : "restore";
      if (now !== phase) {
        phase = now;
        progress?.({ phase });
      }
    }
    await c.pause(signal);
  }
  throw deadlineExceeded(
    `the runner of repl ${req.replId} was not ready within ${seconds(c.readyTimeoutMs)} (${describePod(last)})`,
  );
}

/** The Deployment's ReplicaFailure (the ReplicaSet could not create the pod), as an error at once. */
async function failIfRefused(c: Cluster, req: StartRequest, signal: AbortSignal): Promise<void> {
  const [deployment] = await c.findDeployments(runnerSelector(req.runnerId), signal);
  const failure = deployment?.status?.conditions?.find((x) => x.type === "ReplicaFailure" && x.status === "True");
  if (!failure) return;
  c.log?.warn({ replId: req.replId, reason: failure.reason, message: failure.message }, "the cluster refused the pod");
  throw failedPrecondition(
    `the cluster refused to create the runner's pod of repl ${req.replId} (${failure.reason ?? "ReplicaFailure"}${admissionCause(failure.message ?? "")}); core's log has the cluster's words`,
  );
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
  const unschedulable = pod.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False");
  if (unschedulable) parts.push(`unschedulable: ${unschedulable.reason ?? ""}`);
  return parts.join(", ");
}
