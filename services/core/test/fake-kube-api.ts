/**
 * FAKE of the Kubernetes API server — not Kubernetes. A real one runs here too (1.20, built from
 * Debian's source: k8s-real-api.e2e runs the driver contract there with the persist sidecar, its
 * pods run by a kubelet stand-in, k8s-real-kubelet.ts), but without what needs 1.25 (ephemeral
 * containers) and without fault injection or a record of requests, so most of the driver's tests
 * point the real @kubernetes/client-node at this HTTP server, whose kubelet can run the pods'
 * containers (k8s-local-kubelet.ts).
 *
 * What it implements, with the API server's semantics:
 * - REST paths /api/v1/... and /apis/<group>/<version>/... for namespaced pods, services, secrets,
 *   deployments, replicasets, ingresses, networkpolicies and traefik.io/v1alpha1 middlewares and ingressroutes; Bearer-token auth (401);
 *   namespaces must exist (404 "namespaces "x" not found"); an unknown group/resource is the server's
 *   plain-text "404 page not found" (a CRD that is not installed).
 * - create → 201, or 409 Status reason AlreadyExists; get/delete of a missing object → 404 NotFound;
 *   list with equality/set-free label selectors (a=b, a!=b, a, !a); uid, creationTimestamp,
 *   generation; one global resourceVersion counter bumped on every write, including status changes
 *   made by the simulated controllers, and 409 Conflict on an update/patch with a stale resourceVersion.
 * - PUT replace; PATCH as application/merge-patch+json, application/json-patch+json (add, remove,
 *   replace, test) and application/strategic-merge-patch+json (merge patch, except lists of objects
 *   with a `name` merge by name); 415 for server-side apply.
 * - DELETE with propagationPolicy (body or query): Background/Foreground delete dependents found by
 *   ownerReferences uid (garbage collection, after `gcDelayMs`), Orphan strips the references.
 *   Pods terminate gracefully: deletionTimestamp first, gone after `podTerminationMs`.
 * - Secrets: stringData folded into base64 data. Services get a clusterIP.
 * - A Deployment "controller" creates a ReplicaSet and one Pod per Deployment (owner-linked); a
 *   "kubelet" runs the pod: init containers in order (a failure → CrashLoopBackOff with lastState),
 *   then the containers (waiting CreateContainerConfigError while a referenced Secret is missing;
 *   env and envFrom resolved from Secrets, $(VAR) references expanded as the kubelet does), Ready
 *   condition and Deployment status replicas/readyReplicas.
 *   What a container does is a ContainerRuntime: by default timers and exit codes from FakeBehavior;
 *   k8s-local-kubelet.ts runs the repl containers for real (lib/sync, the runner).
 * - pods/<name>/ephemeralcontainers (PUT or PATCH): only spec.ephemeralContainers may change,
 *   existing ones may not be changed or removed, and a new one may not set ports, resources,
 *   lifecycle or probes (422, as the real server's validation says); each new one is waiting → running →
 *   terminated with the next exit code from `persistExitCodes` (default 0).
 * - Every request is recorded (verb, group, resource/subresource, namespace, name, content type);
 *   bodies of create/update can be checked by a `validate` hook (422 Invalid with causes).
 * - Taught by a real API server (1.20, issue 20): GET /version (`behavior.serverVersion`); pod
 *   admission (`behavior.admitPod`: quota, Pod Security, a missing RuntimeClass, a LimitRange) refuses
 *   the ReplicaSet's pod, which then never exists, and within about a second the ReplicaSet and the
 *   Deployment carry condition ReplicaFailure (reason FailedCreate, the refusal as message), as the
 *   controllers report it; OwnerReferencesPermissionEnforcement (`ownerReferencesEnforced`, on in
 *   OpenShift): an object whose ownerReference has blockOwnerDeletion is refused 403 unless the
 *   caller may update `<owner's resource>/finalizers` (`finalizersAllowed`, which tests take from
 *   the shipped Role).
 *
 * What it does NOT model: watches, field selectors, set-based selectors (in, notin), admission
 * other than the above, scheduling and nodes, rolling updates (one ReplicaSet per Deployment),
 * real probes (readiness is a timer), finalizers, dry-run, server-side apply, managedFields,
 * defaulting of most fields, RBAC (see the recorded requests instead), cluster-scoped resources.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig, type V1Container } from "@kubernetes/client-node";
import { containerEnv } from "../../../lib/testing/kube-env.js";

// biome-ignore lint/suspicious/noExplicitAny: API objects are free-form JSON here, as on the wire.
export type KubeObject = Record<string, any>;

export interface RecordedRequest {
  verb: "create" | "get" | "list" | "update" | "patch" | "delete" | "deletecollection";
  group: string;
  /** "pods" or "pods/ephemeralcontainers". */
  resource: string;
  namespace: string;
  name?: string;
  contentType?: string;
  /** The HTTP status answered. */
  code?: number;
}

export interface FakeBehavior {
  /** Exit code of every init container (default 0). */
  restoreExitCode: number;
  restoreMessage: string;
  /** Time an init container runs (ms). */
  restoreMs: number;
  /** When set, init containers finish only once it resolves (and restoreMs passed): deterministic phases. */
  restoreGate?: Promise<void>;
  /** Time from containers running to Ready (ms). */
  readyMs: number;
  neverReady: boolean;
  imagePullFails: boolean;
  /** Exit codes of the next ephemeral containers, in order; 0 once empty. */
  persistExitCodes: number[];
  persistMessage: string;
  persistMs: number;
  gcDelayMs: number;
  podTerminationMs: number;
  /** The next N writes to pods/ephemeralcontainers race with a kubelet status update (→ 409 Conflict). */
  podWriteRaces: number;
  /** What GET /version says ("1.29"). */
  serverVersion: string;
  /** Admission of a ReplicaSet's pod: a refusal's message (as the API server words it), or undefined. */
  admitPod?: (pod: KubeObject) => string | undefined;
  /** OwnerReferencesPermissionEnforcement is on. */
  ownerReferencesEnforced: boolean;
  /** The caller may update deployments/finalizers (what blockOwnerDeletion needs when enforced). */
  finalizersAllowed: boolean;
}

/**
 * What runs containers for the fake kubelet. The default simulates them with timers (FakeBehavior);
 * a test can run them for real (k8s-local-kubelet.ts runs lib/sync and the runner in-process).
 */
export interface ContainerRuntime {
  /** Runs an init or ephemeral container to completion. */
  run(
    pod: KubeObject,
    container: KubeObject,
    env: Record<string, string>,
  ): Promise<{ exitCode: number; message?: string }>;
  /** Starts a long-running container; resolves once it is ready, rejects if it crashes. */
  start(pod: KubeObject, container: KubeObject, env: Record<string, string>): Promise<void>;
  /** The pod is gone: stop its containers and drop its volumes. */
  stopPod(pod: KubeObject): Promise<void>;
}

export interface FakeKubeApiOptions {
  runtime?: ContainerRuntime;
  /** Objects that exist before the test (e.g. the S3 credentials Secret). */
  seed?: KubeObject[];
  namespaces?: string[];
  /** Whether the traefik.io Middleware CRD is installed (default true). */
  traefik?: boolean;
  validate?: (obj: KubeObject) => string[];
}

/** What the API server's validation refuses in an ephemeral container (apis/core/validation). */
const ephemeralForbidden = ["ports", "resources", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe"];

interface ResourceType {
  group: string;
  version: string;
  resource: string;
  kind: string;
}

const types: ResourceType[] = [
  { group: "", version: "v1", resource: "pods", kind: "Pod" },
  { group: "", version: "v1", resource: "services", kind: "Service" },
  { group: "", version: "v1", resource: "secrets", kind: "Secret" },
  { group: "apps", version: "v1", resource: "deployments", kind: "Deployment" },
  { group: "apps", version: "v1", resource: "replicasets", kind: "ReplicaSet" },
  { group: "networking.k8s.io", version: "v1", resource: "ingresses", kind: "Ingress" },
  { group: "networking.k8s.io", version: "v1", resource: "networkpolicies", kind: "NetworkPolicy" },
  { group: "traefik.io", version: "v1alpha1", resource: "middlewares", kind: "Middleware" },
  { group: "traefik.io", version: "v1alpha1", resource: "ingressroutes", kind: "IngressRoute" },
];

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: KubeObject,
  ) {
    super(message);
  }
}

const clone = <T>(v: T): T => structuredClone(v);
/** JSON with sorted keys: equality of API objects regardless of field order. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)))
      : x,
  );
const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/${t.version}` : t.version);

export interface FakeKubeApi {
  readonly url: string;
  readonly token: string;
  readonly requests: RecordedRequest[];
  readonly behavior: FakeBehavior;
  /** A KubeConfig for the real client, pointing at this server. */
  kubeConfig(): KubeConfig;
  /** Objects of a resource ("deployments", "pods", ...) in a namespace, as stored. */
  objects(resource: string, namespace?: string): KubeObject[];
  /** Makes a pod Ready or not Ready (e.g. the runner crashed) — what the kubelet would do. */
  setPodReady(namespace: string, name: string, ready: boolean): void;
  close(): Promise<void>;
}

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const namespaces = new Set(options.namespaces ?? ["default"]);
  const installed = types.filter((t) => options.traefik !== false || t.group !== "traefik.io");
  const store = new Map<string, KubeObject>(); // "<resource>/<ns>/<name>"
  const timers = new Set<NodeJS.Timeout>();
  const token = randomBytes(16).toString("hex");
  let rv = 1000;
  const behavior: FakeBehavior = {
    restoreExitCode: 0,
    restoreMessage: "",
    restoreMs: 10,
    readyMs: 10,
    neverReady: false,
    imagePullFails: false,
    persistExitCodes: [],
    persistMessage: "",
    persistMs: 10,
    gcDelayMs: 0,
    podTerminationMs: 5,
    podWriteRaces: 0,
    serverVersion: "1.29",
    ownerReferencesEnforced: false,
    finalizersAllowed: true,
  };
  const requests: RecordedRequest[] = [];
  const simulated: ContainerRuntime = {
    async run(pod, c) {
      const ephemeral = (pod.spec.ephemeralContainers ?? []).some((e: KubeObject) => e.name === c.name);
      if (ephemeral) {
        await new Promise((r) => later(behavior.persistMs, () => r(undefined)));
        const exitCode = behavior.persistExitCodes.shift() ?? 0;
        return { exitCode, message: exitCode ? behavior.persistMessage : "" };
      }
      await new Promise((r) => later(behavior.restoreMs, () => r(undefined)));
      await (behavior.restoreGate ?? Promise.resolve());
      return { exitCode: behavior.restoreExitCode, message: behavior.restoreMessage };
    },
    async start() {
      if (behavior.neverReady) return new Promise<void>(() => {});
      await new Promise((r) => later(behavior.readyMs, () => r(undefined)));
    },
    async stopPod() {},
  };
  const runtime = options.runtime ?? simulated;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const key = (resource: string, ns: string, name: string) => `${resource}/${ns}/${name}`;
  const bump = (obj: KubeObject) => {
    obj.metadata.resourceVersion = String(++rv);
  };
  const all = (resource: string, ns?: string) =>
    [...store.entries()]
      .filter(([k]) => k.startsWith(`${resource}/${ns === undefined ? "" : `${ns}/`}`))
      .map(([, o]) => o);

  function insert(t: ResourceType, ns: string, obj: KubeObject): KubeObject {
    obj.metadata ??= {};
    const meta = obj.metadata;
    if (!meta.name && meta.generateName)
      meta.name = `${meta.generateName}${randomBytes(3).toString("hex").slice(0, 5)}`;
    if (!meta.name) throw new HttpError(422, "Invalid", `${t.kind} "" is invalid: metadata.name: Required value`);
    if (meta.namespace && meta.namespace !== ns)
      throw new HttpError(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    if (store.has(key(t.resource, ns, meta.name)))
      throw new HttpError(409, "AlreadyExists", `${t.resource} "${meta.name}" already exists`, {
        name: meta.name,
        group: t.group,
        kind: t.resource,
      });
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    meta.namespace = ns;
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    meta.generation = 1;
    delete meta.resourceVersion;
    bump(obj);
    if (t.resource === "secrets") {
      obj.data = { ...(obj.data ?? {}) };
      for (const [k, v] of Object.entries(obj.stringData ?? {}))
        obj.data[k] = Buffer.from(String(v)).toString("base64");
      delete obj.stringData;
    }
    if (t.resource === "services") obj.spec.clusterIP = `10.96.${rv % 250}.${(rv >> 8) % 250}`;
    if (t.resource === "deployments") obj.status = {};
    store.set(key(t.resource, ns, meta.name), obj);
    if (t.resource === "deployments") later(1, () => reconcileDeployment(ns, meta.name));
    return obj;
  }

  // ---- the simulated controllers -------------------------------------------------------------
  const ownerRef = (o: KubeObject, controller = true) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    uid: o.metadata.uid,
    controller,
    blockOwnerDeletion: true,
  });

  function reconcileDeployment(ns: string, name: string) {
    const d = store.get(key("deployments", ns, name));
    if (!d) return;
    const rs = insert(types[4], ns, {
      metadata: {
        name: `${name}-${randomBytes(5).toString("hex").slice(0, 10)}`,
        labels: clone(d.spec.template.metadata?.labels ?? {}),
        ownerReferences: [ownerRef(d)],
      },
      spec: { replicas: 1, selector: clone(d.spec.selector), template: clone(d.spec.template) },
    });
    const refused = behavior.admitPod?.({ metadata: { namespace: ns }, spec: clone(d.spec.template.spec) });
    if (refused) {
      // The ReplicaSet controller's create fails; it and the Deployment controller report it.
      const condition = {
        type: "ReplicaFailure",
        status: "True",
        reason: "FailedCreate",
        message: refused,
        lastTransitionTime: now(),
      };
      rs.status = { replicas: 0, conditions: [condition] };
      bump(rs);
      d.status = { ...d.status, replicas: 0, unavailableReplicas: 1, conditions: [clone(condition)] };
      bump(d);
      return;
    }
    const pod = insert(types[0], ns, {
      metadata: {
        generateName: `${rs.metadata.name}-`,
        labels: clone(d.spec.template.metadata?.labels ?? {}),
        ownerReferences: [ownerRef(rs)],
      },
      spec: { ...clone(d.spec.template.spec), nodeName: "fake-node" },
    });
    pod.status = {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "True" }],
      initContainerStatuses: (pod.spec.initContainers ?? []).map((c: KubeObject) => ({
        name: c.name,
        image: c.image,
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: behavior.imagePullFails ? "ImagePullBackOff" : "PodInitializing" } },
      })),
      containerStatuses: pod.spec.containers.map((c: KubeObject) => ({
        name: c.name,
        image: c.image,
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: "PodInitializing" } },
      })),
    };
    bump(pod);
    if (!behavior.imagePullFails) later(1, () => void runPod(ns, pod.metadata.name));
  }

  const podAlive = (ns: string, name: string) => {
    const p = store.get(key("pods", ns, name));
    return p && !p.metadata.deletionTimestamp ? p : undefined;
  };
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

  const podEnv = (pod: KubeObject, c: KubeObject) =>
    containerEnv(c as V1Container, (name) => {
      const s = store.get(key("secrets", pod.metadata.namespace, name));
      return s && (s.data ?? {});
    });

  /** Runs a run-to-completion container (init or ephemeral), retrying while a Secret is missing. */
  async function runToCompletion(ns: string, podName: string, c: KubeObject, status: KubeObject) {
    for (;;) {
      const pod = podAlive(ns, podName);
      if (!pod) return undefined;
      const env = podEnv(pod, c);
      if ("missing" in env) {
        status.state = {
          waiting: { reason: "CreateContainerConfigError", message: `secret "${env.missing}" not found` },
        };
        bump(pod);
        await new Promise((r) => later(5, () => r(undefined)));
        continue;
      }
      status.state = { running: { startedAt: now() } };
      bump(pod);
      let result: { exitCode: number; message?: string };
      try {
        result = await runtime.run(pod, c, env);
      } catch (err) {
        result = { exitCode: 128, message: String(err) };
      }
      const alive = podAlive(ns, podName);
      if (!alive) return undefined;
      const terminated = {
        exitCode: result.exitCode,
        reason: result.exitCode === 0 ? "Completed" : "Error",
        message: result.message ?? "",
        startedAt: status.state.running.startedAt,
        finishedAt: now(),
      };
      status.state = { terminated };
      bump(alive);
      return terminated;
    }
  }

  async function runPod(ns: string, name: string) {
    const pod = podAlive(ns, name);
    if (!pod) return;
    for (const [i, c] of (pod.spec.initContainers ?? []).entries()) {
      const status = podAlive(ns, name)?.status.initContainerStatuses[i];
      if (!status) return;
      const done = await runToCompletion(ns, name, c, status);
      if (!done) return;
      if (done.exitCode !== 0) {
        // restartPolicy Always: the kubelet restarts the init container with a back-off.
        later(2, () => {
          const p = podAlive(ns, name);
          if (!p) return;
          const s = p.status.initContainerStatuses[i];
          s.lastState = { terminated: done };
          s.state = { waiting: { reason: "CrashLoopBackOff" } };
          s.restartCount++;
          bump(p);
        });
        return;
      }
    }
    await startContainers(ns, name);
  }

  async function startContainers(ns: string, name: string) {
    for (;;) {
      const pod = podAlive(ns, name);
      if (!pod) return;
      if (!pod.status.conditions.some((c: KubeObject) => c.type === "Initialized"))
        pod.status.conditions.push({ type: "Initialized", status: "True" });
      pod.status.phase = "Running";
      const envs = pod.spec.containers.map((c: KubeObject) => podEnv(pod, c));
      const missing = envs.find((e: KubeObject) => "missing" in e);
      pod.status.containerStatuses.forEach((s: KubeObject) => {
        s.state = missing
          ? { waiting: { reason: "CreateContainerConfigError", message: `secret "${missing.missing}" not found` } }
          : { running: { startedAt: now() } };
      });
      bump(pod);
      if (missing) {
        await new Promise((r) => later(5, () => r(undefined)));
        continue;
      }
      try {
        await Promise.all(pod.spec.containers.map((c: KubeObject, i: number) => runtime.start(pod, c, envs[i])));
      } catch (err) {
        const p = podAlive(ns, name);
        if (!p) return;
        for (const s of p.status.containerStatuses) {
          s.lastState = { terminated: { exitCode: 1, reason: "Error", message: String(err) } };
          s.state = { waiting: { reason: "CrashLoopBackOff" } };
        }
        bump(p);
        return;
      }
      setPodReady(ns, name, true);
      return;
    }
  }

  function setPodReady(ns: string, name: string, ready: boolean) {
    const pod = podAlive(ns, name);
    if (!pod) return;
    for (const s of pod.status.containerStatuses) s.ready = ready;
    pod.status.conditions = pod.status.conditions.filter((c: KubeObject) => c.type !== "Ready");
    pod.status.conditions.push({ type: "Ready", status: ready ? "True" : "False" });
    bump(pod);
    const rs = pod.metadata.ownerReferences?.[0];
    const rsObj = rs && store.get(key("replicasets", ns, rs.name));
    const dep = rsObj && store.get(key("deployments", ns, rsObj.metadata.ownerReferences?.[0]?.name));
    if (dep) {
      dep.status = {
        replicas: 1,
        readyReplicas: ready ? 1 : 0,
        availableReplicas: ready ? 1 : 0,
        observedGeneration: 1,
      };
      bump(dep);
    }
  }

  function runEphemeral(ns: string, name: string, container: string) {
    const pod = podAlive(ns, name);
    if (!pod) return;
    const spec = pod.spec.ephemeralContainers.find((c: KubeObject) => c.name === container);
    const status: KubeObject = {
      name: container,
      image: spec?.image ?? "",
      imageID: "",
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
    };
    pod.status.ephemeralContainerStatuses ??= [];
    pod.status.ephemeralContainerStatuses.push(status);
    bump(pod);
    if (pod.status.phase !== "Running") return; // the kubelet starts ephemeral containers only in running pods
    later(1, () => void runToCompletion(ns, name, spec, status));
  }

  // ---- deletion and garbage collection -------------------------------------------------------
  function remove(resource: string, ns: string, name: string, policy: string) {
    const obj = store.get(key(resource, ns, name))!;
    if (resource === "pods") {
      if (!obj.metadata.deletionTimestamp) {
        obj.metadata.deletionTimestamp = new Date().toISOString();
        bump(obj);
        // As the kubelet does: the containers stop, then the pod object goes (a bound pod's
        // graceful deletion); until then lists still show it, terminating.
        later(behavior.podTerminationMs, () => {
          void runtime
            .stopPod(obj)
            .catch(() => {})
            .finally(() => store.delete(key(resource, ns, name)));
        });
      }
    } else store.delete(key(resource, ns, name));
    const uid = obj.metadata.uid;
    const dependents = [...store.entries()].filter(([, o]) =>
      (o.metadata.ownerReferences ?? []).some((r: KubeObject) => r.uid === uid),
    );
    if (policy === "Orphan") {
      for (const [, o] of dependents) {
        o.metadata.ownerReferences = o.metadata.ownerReferences.filter((r: KubeObject) => r.uid !== uid);
        bump(o);
      }
      return;
    }
    later(behavior.gcDelayMs, () => {
      for (const [k] of dependents) {
        const [res, n, nm] = k.split("/");
        if (store.has(k)) remove(res, n, nm, "Background");
      }
    });
  }

  // ---- HTTP ----------------------------------------------------------------------------------
  function route(url: URL): { t: ResourceType; ns: string; name?: string; sub?: string } {
    const parts = url.pathname.split("/").filter(Boolean);
    let group = "";
    let rest: string[];
    if (parts[0] === "api" && parts[1] === "v1") rest = parts.slice(2);
    else if (parts[0] === "apis" && parts.length >= 3) {
      group = parts[1];
      rest = parts.slice(3);
      if (!installed.some((t) => t.group === group && t.version === parts[2]))
        throw new HttpError(404, "", "404 page not found");
    } else throw new HttpError(404, "", "404 page not found");
    if (rest[0] !== "namespaces" || rest.length < 3) throw new HttpError(404, "", "404 page not found");
    const t = installed.find((x) => x.group === group && x.resource === rest[2]);
    if (!t) throw new HttpError(404, "", "404 page not found");
    if (!namespaces.has(rest[1]))
      throw new HttpError(404, "NotFound", `namespaces "${rest[1]}" not found`, { name: rest[1], kind: "namespaces" });
    return { t, ns: rest[1], name: rest[3], sub: rest[4] };
  }

  function matches(labels: Record<string, string>, selector: string | null): boolean {
    if (!selector) return true;
    return selector.split(",").every((term) => {
      const t = term.trim();
      if (!t) return true;
      const ne = /^([^!=]+)!=(.*)$/.exec(t);
      if (ne) return labels[ne[1].trim()] !== ne[2].trim();
      const eq = /^([^!=]+)==?(.*)$/.exec(t);
      if (eq) return labels[eq[1].trim()] === eq[2].trim();
      if (/\s(in|notin)\s/.test(t))
        throw new HttpError(400, "BadRequest", "set-based selectors are not supported by this fake");
      if (t.startsWith("!")) return !(t.slice(1) in labels);
      return t in labels;
    });
  }

  function mergePatch(target: unknown, patch: unknown, strategic: boolean): unknown {
    if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
      if (
        strategic &&
        Array.isArray(patch) &&
        Array.isArray(target) &&
        patch.every((p) => p && typeof p === "object" && "name" in p)
      ) {
        const out = clone(target) as KubeObject[];
        for (const p of patch as KubeObject[]) {
          const i = out.findIndex((o) => o?.name === p.name);
          if (i >= 0) out[i] = mergePatch(out[i], p, true) as KubeObject;
          else out.push(p);
        }
        return out;
      }
      return clone(patch);
    }
    const out: KubeObject = target && typeof target === "object" && !Array.isArray(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = mergePatch(out[k], v, strategic);
    }
    return out;
  }

  function jsonPatch(doc: KubeObject, ops: KubeObject[]): KubeObject {
    const out = clone(doc);
    for (const op of ops) {
      const path = String(op.path)
        .split("/")
        .slice(1)
        .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
      const last = path.pop()!;
      // biome-ignore lint/suspicious/noExplicitAny: walking arbitrary JSON
      let parent: any = out;
      for (const p of path) {
        parent = parent?.[p];
        if (parent === undefined) throw new HttpError(422, "Invalid", `json patch: path ${op.path} does not exist`);
      }
      const isArr = Array.isArray(parent);
      const idx = last === "-" ? parent.length : Number(last);
      if (op.op === "test" && canonical(parent[last]) !== canonical(op.value))
        throw new HttpError(422, "Invalid", `json patch: test failed at ${op.path}`);
      if (op.op === "add") {
        if (isArr) parent.splice(idx, 0, op.value);
        else parent[last] = op.value;
      } else if (op.op === "replace") {
        if (!(last in parent)) throw new HttpError(422, "Invalid", `json patch: path ${op.path} does not exist`);
        parent[isArr ? idx : last] = op.value;
      } else if (op.op === "remove") {
        if (!(last in parent)) throw new HttpError(422, "Invalid", `json patch: path ${op.path} does not exist`);
        if (isArr) parent.splice(idx, 1);
        else delete parent[last];
      } else if (op.op !== "test") throw new HttpError(422, "Invalid", `json patch: op ${op.op} is not supported`);
    }
    return out;
  }

  /** OwnerReferencesPermissionEnforcement, as the admission plugin words its refusal. */
  function checkOwnerReferences(t: ResourceType, ns: string, obj: KubeObject | undefined) {
    if (!behavior.ownerReferencesEnforced || behavior.finalizersAllowed) return;
    if (!(obj?.metadata?.ownerReferences ?? []).some((r: KubeObject) => r.blockOwnerDeletion)) return;
    throw new HttpError(
      403,
      "Forbidden",
      `${t.resource} "${obj?.metadata?.name}" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>`,
      { name: obj?.metadata?.name, kind: t.resource, namespace: ns },
    );
  }

  function checkValid(obj: KubeObject) {
    const errors = options.validate?.(obj) ?? [];
    if (errors.length)
      throw new HttpError(422, "Invalid", `${obj.kind} "${obj.metadata?.name}" is invalid: ${errors.join("; ")}`, {
        name: obj.metadata?.name,
        kind: obj.kind,
        causes: errors.map((e) => ({ reason: "FieldValueInvalid", message: e, field: e.split(":")[0] })),
      });
  }

  /** The write (update or patch result) of an existing object, with optimistic concurrency. */
  function write(t: ResourceType, ns: string, current: KubeObject, next: KubeObject, sub?: string): KubeObject {
    const sent = next.metadata?.resourceVersion;
    if (sent && sent !== current.metadata.resourceVersion)
      throw new HttpError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${t.resource} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: current.metadata.name, kind: t.resource },
      );
    if (
      next.metadata?.name !== current.metadata.name ||
      (next.metadata?.uid && next.metadata.uid !== current.metadata.uid)
    )
      throw new HttpError(
        422,
        "Invalid",
        `${t.kind} "${current.metadata.name}" is invalid: metadata.name/uid may not change`,
      );
    let result: KubeObject;
    if (t.resource === "pods") {
      if (sub !== "ephemeralcontainers")
        throw new HttpError(
          422,
          "Invalid",
          `Pod "${current.metadata.name}" is invalid: spec: Forbidden: pod updates may not change fields other than ephemeralContainers through this fake`,
        );
      const before: KubeObject[] = current.spec.ephemeralContainers ?? [];
      const after: KubeObject[] = next.spec?.ephemeralContainers ?? [];
      const { ephemeralContainers: _a, ...restBefore } = current.spec;
      const { ephemeralContainers: _b, ...restAfter } = next.spec ?? {};
      if (canonical(restBefore) !== canonical(restAfter))
        throw new HttpError(
          422,
          "Invalid",
          `Pod "${current.metadata.name}" is invalid: spec: Forbidden: only spec.ephemeralContainers may change`,
        );
      if (before.some((b, i) => canonical(b) !== canonical(after[i])))
        throw new HttpError(
          422,
          "Invalid",
          `Pod "${current.metadata.name}" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers may not be changed`,
        );
      const added = after.slice(before.length);
      const names = new Set(
        [...current.spec.containers, ...(current.spec.initContainers ?? []), ...before].map((c) => c.name),
      );
      for (const [i, c] of added.entries()) {
        // As the server's validation sees it: a Go zero value (an empty list or object) is unset.
        const set = (v: unknown) =>
          v !== undefined && v !== null && (typeof v !== "object" || Object.keys(v).length > 0);
        const field = ephemeralForbidden.find((f) => set(c[f]));
        if (field)
          throw new HttpError(
            422,
            "Invalid",
            `Pod "${current.metadata.name}" is invalid: spec.ephemeralContainers[${before.length + i}].${field}: Forbidden: cannot be set for an Ephemeral Container`,
          );
      }
      for (const c of added)
        if (names.has(c.name))
          throw new HttpError(
            422,
            "Invalid",
            `Pod "${current.metadata.name}" is invalid: spec.ephemeralContainers[].name: Duplicate value: "${c.name}"`,
          );
      result = clone(current);
      result.spec.ephemeralContainers = after;
      checkValid(result);
      bump(result);
      store.set(key(t.resource, ns, current.metadata.name), result);
      for (const c of added) runEphemeral(ns, current.metadata.name, c.name);
      return result;
    }
    if (sub) throw new HttpError(404, "NotFound", `subresource ${sub} is not served by this fake`);
    // Writes to the main resource never change status; kinds without one (NetworkPolicy) get none.
    result = { ...clone(next), apiVersion: current.apiVersion, kind: current.kind, status: current.status };
    if (current.status === undefined) delete result.status;
    result.metadata = {
      ...result.metadata,
      namespace: ns,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
    };
    if (canonical(result.spec) !== canonical(current.spec))
      result.metadata.generation = (current.metadata.generation ?? 1) + 1;
    checkValid(result);
    bump(result);
    store.set(key(t.resource, ns, current.metadata.name), result);
    return result;
  }

  const status = (code: number, reason: string, message: string, details?: KubeObject) => ({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: code < 400 ? "Success" : "Failure",
    message,
    reason,
    details,
    code,
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    let recorded: RecordedRequest | undefined;
    const send = (code: number, body: unknown) => {
      if (recorded) recorded.code = code;
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.headers.authorization !== `Bearer ${token}`) throw new HttpError(401, "Unauthorized", "Unauthorized");
      if (url.pathname === "/version" && req.method === "GET") {
        const [major, minor] = behavior.serverVersion.split(".");
        return send(200, { major, minor, gitVersion: `v${behavior.serverVersion}.0`, platform: "linux/amd64" });
      }
      const { t, ns, name, sub } = route(url);
      const method = req.method ?? "GET";
      const verb: RecordedRequest["verb"] =
        method === "POST"
          ? "create"
          : method === "PUT"
            ? "update"
            : method === "PATCH"
              ? "patch"
              : method === "DELETE"
                ? name
                  ? "delete"
                  : "deletecollection"
                : name
                  ? "get"
                  : "list";
      const contentType = req.headers["content-type"]?.split(";")[0];
      recorded = {
        verb,
        group: t.group,
        resource: sub ? `${t.resource}/${sub}` : t.resource,
        namespace: ns,
        name,
        contentType,
      };
      requests.push(recorded);
      const body = raw ? (JSON.parse(raw) as KubeObject) : undefined;
      if (verb === "create") checkOwnerReferences(t, ns, body);
      const current = name ? store.get(key(t.resource, ns, name)) : undefined;
      const notFound = () =>
        new HttpError(404, "NotFound", `${t.resource}${t.group ? `.${t.group}` : ""} "${name}" not found`, {
          name,
          group: t.group,
          kind: t.resource,
        });

      if (verb === "list") {
        const items = all(t.resource, ns).filter((o) =>
          matches(o.metadata.labels ?? {}, url.searchParams.get("labelSelector")),
        );
        return send(200, {
          apiVersion: apiVersionOf(t),
          kind: `${t.kind}List`,
          metadata: { resourceVersion: String(rv) },
          items: items.map((o) => {
            const { apiVersion: _v, kind: _k, ...rest } = clone(o);
            return rest;
          }),
        });
      }
      if (verb === "create") {
        if (name)
          throw new HttpError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
          );
        if (!body || body.kind !== t.kind || body.apiVersion !== apiVersionOf(t))
          throw new HttpError(400, "BadRequest", `the body must be a ${apiVersionOf(t)} ${t.kind}`);
        checkValid(body);
        return send(201, insert(t, ns, clone(body)));
      }
      if (!current) throw notFound();
      if (verb === "get") return send(200, current);
      if (verb === "delete") {
        const policy = url.searchParams.get("propagationPolicy") ?? body?.propagationPolicy ?? "Background";
        const uid = current.metadata.uid;
        remove(t.resource, ns, name!, policy);
        return send(200, status(200, "", "", { name, group: t.group, kind: t.resource, uid }));
      }
      if (sub === "ephemeralcontainers" && behavior.podWriteRaces > 0) {
        behavior.podWriteRaces--;
        bump(current); // a status update by the kubelet lands first
      }
      if (verb === "update") return send(200, write(t, ns, current, body ?? {}, sub));
      if (verb === "patch") {
        let next: KubeObject;
        if (contentType === "application/merge-patch+json") next = mergePatch(current, body, false) as KubeObject;
        else if (contentType === "application/strategic-merge-patch+json")
          next = mergePatch(current, body, true) as KubeObject;
        else if (contentType === "application/json-patch+json")
          next = jsonPatch(current, (body ?? []) as unknown as KubeObject[]);
        else
          throw new HttpError(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
          );
        if (!body?.metadata?.resourceVersion && contentType !== "application/json-patch+json")
          next.metadata.resourceVersion = current.metadata.resourceVersion;
        return send(200, write(t, ns, current, next, sub));
      }
      throw new HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    } catch (err) {
      if (err instanceof HttpError && !err.reason && err.code === 404) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end(err.message);
        return;
      }
      if (err instanceof HttpError) return send(err.code, status(err.code, err.reason, err.message, err.details));
      if (err instanceof SyntaxError) return send(400, status(400, "BadRequest", "the request body is not JSON"));
      send(500, status(500, "InternalError", String(err)));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const o of options.seed ?? []) {
    const t = types.find((x) => x.kind === o.kind && apiVersionOf(x) === o.apiVersion);
    if (!t) throw new Error(`cannot seed a ${o.apiVersion} ${o.kind}`);
    insert(t, o.metadata?.namespace ?? [...namespaces][0], clone(o));
  }

  return {
    url,
    token,
    requests,
    behavior,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
        users: [{ name: "core", token }],
        contexts: [{ name: "fake", cluster: "fake", user: "core", namespace: [...namespaces][0] }],
        currentContext: "fake",
      });
      return kc;
    },
    objects: (resource, ns) => all(resource, ns).map(clone),
    setPodReady,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all(all("pods").map((p) => runtime.stopPod(p).catch(() => {})));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
