/**
 * TEST RUNTIME, not a kubelet: runs the containers of a Kubernetes pod spec, as the Kubernetes driver
 * builds it, with Podman (runc), so a test can check that the images honour what the spec asks:
 * - every container joins one network namespace the test made (`netns`), as a pod's share one;
 * - emptyDir volumes are folders under `root`, mode 0777 (group fsGroup and setgid with one); secret volumes a file per
 *   key (root's, group fsGroup, defaultMode), mounted read-only; subPath and readOnly mounts as the
 *   kubelet makes them;
 * - the security context: runAsUser/runAsGroup/fsGroup, runAsNonRoot (refused if the user is 0),
 *   readOnlyRootFilesystem (strict: no tmpfs of Podman's own), capabilities.drop ALL,
 *   allowPrivilegeEscalation false (no_new_privs), Podman's default seccomp profile (RuntimeDefault);
 * - command replaces the image's entrypoint and args its CMD; env as the kubelet builds it
 *   (kube-env.ts) from the `secrets` given; spec.hostname; none of the host's proxy variables;
 * - run-to-completion containers (init, ephemeral) write /dev/termination-log, a file the test reads
 *   back as the termination message; FallbackToLogsOnError takes the log's tail when it is empty.
 * Not modelled: resource limits, probes (the test polls), restarts, IPC namespace sharing, the
 * termination message's size caps, images' pull policy (the image must be local). Every container
 * gets `ulimits`: Podman's defaults exceed this machine's hard limits, and runc may not raise them.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { V1Container, V1PodSpec } from "@kubernetes/client-node";
import { containerEnv } from "./kube-env.js";

const run = promisify(execFile);

/** Below this machine's hard limits (nofile 20000, nproc 96364), which Podman's defaults exceed. */
export const ulimits = ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=16384:16384"];

export interface PodmanPod {
  /** Runs an init or ephemeral container to completion. */
  runToCompletion(container: V1Container): Promise<{ exitCode: number; message: string }>;
  /** Starts a long-running container; returns at once. */
  start(container: V1Container): Promise<void>;
  /** What `sh -c script` prints (stdout and stderr) in a started container. */
  exec(name: string, script: string): Promise<string>;
  /** The last lines a started container printed. */
  logs(name: string): Promise<string>;
  close(): Promise<void>;
}

export interface PodmanPodOptions {
  spec: V1PodSpec;
  /** Secret name → key → value, for secretKeyRef, envFrom and secret volumes. */
  secrets: Record<string, Record<string, string>>;
  /** The name of a network namespace under /run/netns. */
  netns: string;
  /** A folder of the test's, for the pod's volumes and termination logs. */
  root: string;
}

export async function podmanPod(o: PodmanPodOptions): Promise<PodmanPod> {
  const prefix = `devex-test-${randomBytes(4).toString("hex")}`;
  const started: string[] = [];
  const fsGroup = o.spec.securityContext?.fsGroup;
  const readOnlyVolumes = new Set<string>();
  // As the kubelet makes an emptyDir, and a subPath folder in one: root's, open to all, and with
  // fsGroup that group's (setgid).
  const asEmptyDir = async (dir: string) => {
    await chown(dir, 0, fsGroup ?? 0);
    await chmod(dir, fsGroup === undefined ? 0o777 : 0o2777);
  };
  for (const v of o.spec.volumes ?? []) {
    const dir = join(o.root, "volumes", v.name);
    await mkdir(dir, { recursive: true });
    if (v.emptyDir) await asEmptyDir(dir);
    else if (v.secret) {
      // As the kubelet writes a Secret volume: a file per key, root's, group fsGroup, defaultMode.
      const data = o.secrets[v.secret.secretName ?? ""];
      if (!data) throw new Error(`volume ${v.name}: secret ${v.secret.secretName} not found`);
      for (const [key, value] of Object.entries(data)) {
        await writeFile(join(dir, key), value);
        await chown(join(dir, key), 0, fsGroup ?? 0);
        await chmod(join(dir, key), v.secret.defaultMode ?? 0o644);
      }
      readOnlyVolumes.add(v.name);
    } else throw new Error(`volume ${v.name}: only emptyDir and secret volumes are modelled`);
  }

  async function args(c: V1Container, name: string): Promise<string[]> {
    const pod = o.spec.securityContext ?? {};
    const sc = c.securityContext ?? {};
    const user = sc.runAsUser ?? pod.runAsUser;
    const group = sc.runAsGroup ?? pod.runAsGroup;
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) && !user) throw new Error(`${c.name}: runAsNonRoot needs runAsUser`);
    // Kubernetes passes a container none of the host's proxy variables, which Podman does by default.
    const a = ["--name", name, "--network", `ns:/run/netns/${o.netns}`, "--http-proxy=false", ...ulimits];
    if (o.spec.hostname) a.push("--hostname", o.spec.hostname);
    if (user !== undefined) a.push("--user", `${user}:${group ?? user}`);
    if (pod.fsGroup !== undefined) a.push("--group-add", String(pod.fsGroup));
    if (sc.readOnlyRootFilesystem) a.push("--read-only", "--read-only-tmpfs=false");
    for (const cap of sc.capabilities?.drop ?? []) a.push("--cap-drop", cap.toLowerCase());
    for (const cap of sc.capabilities?.add ?? []) a.push("--cap-add", cap.toLowerCase());
    if (sc.allowPrivilegeEscalation === false) a.push("--security-opt", "no-new-privileges");
    if (sc.privileged) throw new Error(`${c.name}: privileged containers are not modelled`);
    for (const m of c.volumeMounts ?? []) {
      const dir = join(o.root, "volumes", m.name, m.subPath ?? "");
      if (m.subPath && (await mkdir(dir, { recursive: true }))) await asEmptyDir(dir);
      a.push("--volume", `${dir}:${m.mountPath}:${m.readOnly || readOnlyVolumes.has(m.name) ? "ro" : "rw"}`);
    }
    for (const [k, v] of Object.entries(environment(c))) a.push("--env", `${k}=${v}`);
    if (c.command) a.push("--entrypoint", JSON.stringify(c.command));
    a.push(c.image!);
    // With a command and no args, Kubernetes drops the image's CMD; Podman's --entrypoint does too.
    a.push(...(c.args ?? []));
    return a;
  }

  function environment(c: V1Container): Record<string, string> {
    const base64 = (name: string) =>
      o.secrets[name] &&
      Object.fromEntries(Object.entries(o.secrets[name]).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
    const env = containerEnv(c, base64);
    if ("missing" in env) throw new Error(`${c.name}: secret ${env.missing} not found`);
    return env;
  }

  return {
    async runToCompletion(c) {
      const name = `${prefix}-${c.name}-${randomBytes(2).toString("hex")}`;
      const log = join(o.root, "termination", name);
      await mkdir(join(o.root, "termination"), { recursive: true });
      await writeFile(log, "");
      await chmod(log, 0o666);
      const a = await args(c, name);
      started.push(name);
      a.splice(a.indexOf(c.image!), 0, "--volume", `${log}:${c.terminationMessagePath ?? "/dev/termination-log"}`);
      let exitCode = 0;
      let output = "";
      try {
        const r = await run("podman", ["run", "--rm", ...a], { maxBuffer: 64 << 20, timeout: 5 * 60_000 });
        output = r.stdout + r.stderr;
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        exitCode = typeof e.code === "number" ? e.code : 1;
        output = `${e.stdout ?? ""}${e.stderr ?? ""}`;
      }
      let message = await readFile(log, "utf8");
      if (!message && exitCode !== 0 && c.terminationMessagePolicy === "FallbackToLogsOnError")
        message = output.split("\n").slice(-80).join("\n");
      return { exitCode, message };
    },

    async start(c) {
      const name = `${prefix}-${c.name}`;
      const a = await args(c, name);
      started.push(name); // removed by close() even if it was made but failed to start
      await run("podman", ["run", "--detach", ...a]);
    },

    async exec(name, script) {
      const r = await run("podman", ["exec", `${prefix}-${name}`, "sh", "-c", script]).catch((e) => e);
      return `${r.stdout ?? ""}${r.stderr ?? ""}`;
    },

    async logs(name) {
      const r = await run("podman", ["logs", "--tail", "80", `${prefix}-${name}`]).catch((e) => e);
      return `${r.stdout ?? ""}${r.stderr ?? ""}`;
    },

    async close() {
      if (started.length) await run("podman", ["rm", "--force", "--ignore", "--time", "0", ...started]).catch(() => {});
      await rm(o.root, { recursive: true, force: true });
    },
  };
}
