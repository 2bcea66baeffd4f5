/**
 * TEST STAND-IN for the kubelet on the real API server (lib/testing/kube-apiserver.ts has no
 * scheduler, nodes or kubelet) — not a kubelet. It polls the pods of one namespace as an admin and
 * runs each new one (by uid, once) with a ContainerRuntime (k8s-local-kubelet.ts runs lib/sync and
 * the runner in-process), reporting through pods/<name>/status what a kubelet reports:
 *
 * - At once: phase Pending, a pod IP (10.244.N.M), PodScheduled, Initialized/Ready/ContainersReady
 *   False, every container waiting PodInitializing.
 * - Env as the kubelet builds it (containerEnv, shared with the fake): envFrom and secretKeyRef read
 *   from the real Secrets, $(VAR) expanded; a missing Secret is waiting CreateContainerConfigError
 *   until it exists.
 * - Init containers in order (runtime.run): running, then terminated with exit code, reason
 *   (Completed/Error) and the termination message (at most 4096 bytes of the file; on a failure the
 *   log fallback's last 2048 bytes); a failure is then waiting CrashLoopBackOff with it as
 *   lastState, and the pod goes no further.
 * - Then Initialized, phase Running, the containers running (runtime.start, all at once), and once
 *   every one is ready: ready, ContainersReady and Ready. A container that fails to start is waiting
 *   CrashLoopBackOff with lastState terminated (exit 1, the error as message).
 * - A pod that is gone (the API server deletes unbound pods at once) or has a deletionTimestamp:
 *   its run is abandoned, then runtime.stopPod.
 * Status writes are PUTs with the last resourceVersion seen; a 409 Conflict re-reads the pod and
 * writes again, a pod gone or replaced (another uid) ends its run.
 *
 * Not modelled: binding to a node (pods keep no nodeName, so deletion skips graceful termination),
 * restarts (CrashLoopBackOff is final), probes after the first readiness, ephemeral containers,
 * images, resources, security contexts, volumes other than what the runtime maps, events.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  type KubeConfig,
  type V1Container,
  type V1ContainerStateTerminated,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodStatus,
} from "@kubernetes/client-node";
import { containerEnv, secretsOf } from "../../../lib/testing/kube-env.js";
import { isConflict, isNotFound } from "../src/driver/kubernetes/errors.js";
import type { ContainerRuntime, KubeObject } from "./fake-kube-api.js";

export interface RealKubelet {
  /** Stops polling and every pod it runs; rejects with what failed in the stand-in itself, if anything. */
  close(): Promise<void>;
}

interface PodRun {
  uid: string;
  name: string;
  /** The pod as last read or written (its resourceVersion goes with the next status write). */
  pod: V1Pod;
  status: V1PodStatus;
  gone: boolean;
  done: Promise<void>;
  stopped?: Promise<void>;
}

const condition = (type: string, ok: boolean, reason?: string) => ({
  type,
  status: ok ? "True" : "False",
  reason: ok ? undefined : reason,
  lastTransitionTime: new Date(),
});

function setCondition(status: V1PodStatus, type: string, ok: boolean) {
  const i = status.conditions!.findIndex((c) => c.type === type);
  if (status.conditions![i].status !== (ok ? "True" : "False")) status.conditions![i] = condition(type, ok);
}

function pendingStatus(pod: V1Pod, podIP: string): V1PodStatus {
  const waiting = (c: V1Container): V1ContainerStatus => ({
    name: c.name,
    image: c.image ?? "",
    imageID: "",
    ready: false,
    restartCount: 0,
    state: { waiting: { reason: "PodInitializing" } },
  });
  return {
    phase: "Pending",
    hostIP: "127.0.0.1",
    podIP,
    podIPs: [{ ip: podIP }],
    startTime: new Date(),
    conditions: [
      condition("PodScheduled", true),
      condition("Initialized", false, "ContainersNotInitialized"),
      condition("Ready", false, "ContainersNotReady"),
      condition("ContainersReady", false, "ContainersNotReady"),
    ],
    initContainerStatuses: (pod.spec?.initContainers ?? []).map(waiting),
    containerStatuses: (pod.spec?.containers ?? []).map(waiting),
  };
}

/** What the kubelet keeps of a termination message: the file's first 4096 bytes, or the log's last 2048. */
const terminationMessage = (message: string, exitCode: number) =>
  exitCode === 0 ? message.slice(0, 4096) : message.slice(-2048);

export function startRealKubelet(o: {
  kubeConfig: KubeConfig;
  runtime: ContainerRuntime;
  namespace: string;
  pollMs?: number;
}): RealKubelet {
  const core = o.kubeConfig.makeApiClient(CoreV1Api);
  const namespace = o.namespace;
  const pollMs = o.pollMs ?? 50;
  const runs = new Map<string, PodRun>(); // pod uid → (never removed: a uid runs once)
  const failures: string[] = [];
  let podIPs = 0;
  let closed = false;

  /** Writes run.status; false when the pod is gone or replaced (the run ends). */
  async function write(run: PodRun): Promise<boolean> {
    while (!run.gone) {
      try {
        run.pod = await core.replaceNamespacedPodStatus({
          name: run.name,
          namespace,
          body: { ...run.pod, status: run.status },
        });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        if (!isConflict(err)) throw err;
      }
      try {
        run.pod = await core.readNamespacedPod({ name: run.name, namespace });
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
      if (run.pod.metadata?.uid !== run.uid) return false;
    }
    return false;
  }

  async function secrets(c: V1Container) {
    const data = new Map<string, Record<string, string>>();
    for (const name of secretsOf(c)) {
      try {
        data.set(name, (await core.readNamespacedSecret({ name, namespace })).data ?? {});
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return (name: string) => data.get(name);
  }

  /** The container's env once its Secrets exist (waiting CreateContainerConfigError until then). */
  async function envOf(run: PodRun, c: V1Container, s: V1ContainerStatus) {
    for (let reported = false; !run.gone; await sleep(pollMs)) {
      const env = containerEnv(c, await secrets(c));
      if (!("missing" in env)) return env;
      if (reported) continue;
      s.state = { waiting: { reason: "CreateContainerConfigError", message: `secret "${env.missing}" not found` } };
      reported = await write(run);
    }
    return undefined;
  }

  /** Runs the init containers in order; false when one failed or the pod went. */
  async function initialize(run: PodRun): Promise<boolean> {
    for (const [i, c] of (run.pod.spec?.initContainers ?? []).entries()) {
      const s = run.status.initContainerStatuses![i];
      const env = await envOf(run, c, s);
      if (!env) return false;
      const startedAt = new Date();
      s.state = { running: { startedAt } };
      if (!(await write(run))) return false;
      const result = await o.runtime
        .run(run.pod, c as KubeObject, env)
        .catch((err) => ({ exitCode: 128, message: String(err) }));
      const terminated: V1ContainerStateTerminated = {
        exitCode: result.exitCode,
        reason: result.exitCode === 0 ? "Completed" : "Error",
        message: terminationMessage(result.message ?? "", result.exitCode),
        startedAt,
        finishedAt: new Date(),
      };
      s.state = { terminated };
      s.ready = result.exitCode === 0;
      if (!(await write(run))) return false;
      if (result.exitCode !== 0) {
        s.lastState = { terminated };
        s.state = {
          waiting: { reason: "CrashLoopBackOff", message: `back-off 10s restarting failed container=${c.name}` },
        };
        s.restartCount = 1;
        await write(run);
        return false;
      }
    }
    return true;
  }

  async function startContainers(run: PodRun) {
    const containers = run.pod.spec?.containers ?? [];
    const statuses = run.status.containerStatuses!;
    const envs: Record<string, string>[] = [];
    for (const [i, c] of containers.entries()) {
      const env = await envOf(run, c, statuses[i]);
      if (!env) return;
      envs.push(env);
    }
    setCondition(run.status, "Initialized", true);
    run.status.phase = "Running";
    for (const s of statuses) {
      s.state = { running: { startedAt: new Date() } };
      s.started = true;
    }
    if (!(await write(run))) return;
    const started = await Promise.allSettled(
      containers.map((c, i) => o.runtime.start(run.pod, c as KubeObject, envs[i])),
    );
    if (run.gone) return;
    for (const [i, r] of started.entries()) {
      statuses[i].ready = r.status === "fulfilled";
      if (r.status === "fulfilled") continue;
      statuses[i].lastState = { terminated: { exitCode: 1, reason: "Error", message: String(r.reason) } };
      statuses[i].state = { waiting: { reason: "CrashLoopBackOff" } };
      statuses[i].restartCount = 1;
    }
    const ready = started.every((r) => r.status === "fulfilled");
    setCondition(run.status, "ContainersReady", ready);
    setCondition(run.status, "Ready", ready);
    await write(run);
  }

  function admit(pod: V1Pod): PodRun {
    const run = {
      uid: pod.metadata!.uid!,
      name: pod.metadata!.name!,
      pod,
      status: pendingStatus(pod, `10.244.${Math.floor(podIPs / 250)}.${(podIPs++ % 250) + 1}`),
      gone: false,
    } as PodRun;
    run.done = (async () => {
      if ((await write(run)) && (await initialize(run))) await startContainers(run);
    })().catch((err) => {
      if (!run.gone) failures.push(`pod ${run.name}: ${(err as Error).stack ?? err}`);
    });
    return run;
  }

  /** The pod went: abandon its run, then stop its containers (once). */
  function kill(run: PodRun): Promise<void> {
    run.gone = true;
    run.stopped ??= run.done
      .then(() => o.runtime.stopPod(run.pod))
      .catch((err) => {
        failures.push(`stopping pod ${run.name}: ${(err as Error).stack ?? err}`);
      });
    return run.stopped;
  }

  async function sync() {
    const { items } = await core.listNamespacedPod({ namespace });
    const live = new Set<string>();
    for (const pod of items) {
      if (pod.metadata?.deletionTimestamp) continue;
      live.add(pod.metadata!.uid!);
      if (!runs.has(pod.metadata!.uid!)) runs.set(pod.metadata!.uid!, admit(pod));
    }
    for (const run of runs.values()) if (!live.has(run.uid)) void kill(run);
  }

  const loop = (async () => {
    while (!closed) {
      await sync().catch((err) => failures.push(`listing pods: ${(err as Error).stack ?? err}`));
      await sleep(pollMs);
    }
  })();

  return {
    async close() {
      closed = true;
      await loop;
      await Promise.all([...runs.values()].map(kill));
      if (failures.length) throw new Error(`the kubelet stand-in failed:\n${failures.join("\n")}`);
    },
  };
}
