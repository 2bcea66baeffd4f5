/**
 * TEST RUNTIME for the fake API server's kubelet and the real API server's kubelet stand-in
 * (k8s-real-kubelet.ts) — not Kubernetes, not a container runtime. It runs the containers of the
 * repl pods the Kubernetes driver creates on this machine, so the shared driver contract can check
 * files end to end through either API server:
 *
 * - Volumes: every emptyDir is a directory per pod (uid); paths in a container's command and env
 *   that fall under one of its volumeMounts are mapped into it (into its subPath folder, if set).
 * - Sync containers (restore init container, persist ephemeral container): the command must be the
 *   driver's `sh -c 'exec "$0" "$@" > /dev/termination-log' node /app/dist/sync/cli.mjs <op> ...`.
 *   The arguments are parsed by lib/sync/cli.ts's own parser and its runSync runs in-process
 *   against the injected blob store. The JSON result becomes the termination message (what the
 *   redirect to /dev/termination-log gives); a failure exits 1 with the error as the message (what
 *   terminationMessagePolicy FallbackToLogsOnError gives).
 * - The runner container: startRunner in-process with the container's env (workspace mapped,
 *   127.0.0.1, port 0); ready once /healthz answers 200.
 * - The persist sidecar: `node /app/dist/sync/cli.mjs serve ...` parsed by the same parser, its
 *   persist service (lib/sync/persist-service.ts) in-process on 127.0.0.1, port 0, with the
 *   container's DEVEX_TOKEN_PUBLIC_KEY and DEVEX_REPL_ID; `persistUrl(pod)` says where (the pod IP
 *   and port on a cluster).
 * Not modelled: images, users and security contexts, resource limits, the MCP sidecar (refused).
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "../../../lib/blob/store.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenVerifier } from "../../../lib/kit/tokens.js";
import { parseSyncArgs, runSync, usage } from "../../../lib/sync/cli.js";
import { type PersistService, servePersist } from "../../../lib/sync/persist-service.js";
import { loadRunnerConfig } from "../../runner/src/config.js";
import { type Runner, startRunner } from "../../runner/src/runner.js";
import { RESULT_TO_TERMINATION_LOG } from "../src/driver/kubernetes/objects.js";
import type { ContainerRuntime, KubeObject } from "./fake-kube-api.js";

export interface LocalKubelet extends ContainerRuntime {
  /** Where the runner of a repl's live pod listens (what the Ingress would route to). */
  runnerUrl(replId: string): string | undefined;
  /** Where a pod's persist sidecar listens (the driver's persistUrl). */
  persistUrl(pod: { metadata?: { uid?: string } }): string | undefined;
}

export function createLocalKubelet(opts: { blobs: BlobStore; root: string }): LocalKubelet {
  const runners = new Map<string, { replId: string; runner: Runner }>(); // pod uid →
  const sidecars = new Map<string, PersistService>(); // pod uid →
  const log = createLogger("runner", { level: process.env.TEST_LOG_LEVEL ?? "silent" });

  function mapper(pod: KubeObject, container: KubeObject) {
    const mounts: { path: string; dir: string }[] = (container.volumeMounts ?? []).map((m: KubeObject) => ({
      path: m.mountPath,
      dir: join(opts.root, pod.metadata.uid, m.name, m.subPath ?? ""),
    }));
    return async (path: string): Promise<string> => {
      const m = mounts.find((x) => path === x.path || path.startsWith(`${x.path}/`));
      if (!m) throw new Error(`${path} is not on a volume of container ${container.name}`);
      await mkdir(m.dir, { recursive: true });
      return m.dir + path.slice(m.path.length);
    };
  }

  async function startSidecar(pod: KubeObject, container: KubeObject, env: Record<string, string>) {
    const [node, cli, ...args] = container.command ?? [];
    const run = node === "node" && cli === "/app/dist/sync/cli.mjs" ? parseSyncArgs(args) : undefined;
    if (!run?.serve) throw new Error(`the persist sidecar must run the lib/sync CLI's serve: ${usage}`);
    const map = mapper(pod, container);
    for (const t of run.trees) {
      t.options.dir = await map(t.options.dir);
      if (t.options.manifestPath) t.options.manifestPath = await map(t.options.manifestPath);
    }
    sidecars.set(
      pod.metadata.uid,
      await servePersist({
        persist: () => runSync(run, opts.blobs, () => {}),
        intervalMs: run.serve.intervalSeconds * 1000,
        host: "127.0.0.1",
        port: 0,
        verifier: createTokenVerifier(env.DEVEX_TOKEN_PUBLIC_KEY!),
        replId: env.DEVEX_REPL_ID!,
        say: () => {},
      }),
    );
  }

  return {
    async run(pod, container) {
      const cmd: string[] = container.command ?? [];
      const [sh, c, script, node, cli, op, ...args] = cmd;
      if (sh !== "sh" || c !== "-c" || script !== RESULT_TO_TERMINATION_LOG || node !== "node")
        return { exitCode: 127, message: `this runtime only runs the lib/sync CLI, not ${cmd.join(" ")}` };
      if (cli !== "/app/dist/sync/cli.mjs") return { exitCode: 2, message: usage };
      const run = parseSyncArgs([op, ...args]);
      if (!run) return { exitCode: 2, message: usage };
      const map = mapper(pod, container);
      try {
        for (const t of run.trees) {
          t.options.dir = await map(t.options.dir);
          if (t.options.manifestPath) t.options.manifestPath = await map(t.options.manifestPath);
        }
        const result = await runSync(run, opts.blobs, () => {});
        return { exitCode: 0, message: JSON.stringify(result) };
      } catch (err) {
        return { exitCode: 1, message: `${op} failed: ${(err as Error).message}` };
      }
    },

    async start(pod, container, env) {
      if (container.name === "persist") return startSidecar(pod, container, env);
      if (container.name !== "runner") throw new Error(`this runtime cannot run container ${container.name}`);
      const map = mapper(pod, container);
      const config = loadRunnerConfig({
        ...env,
        DEVEX_RUNNER_WORKSPACE: await map(env.DEVEX_RUNNER_WORKSPACE),
        DEVEX_RUNNER_HOME: env.DEVEX_RUNNER_HOME && (await map(env.DEVEX_RUNNER_HOME)),
        DEVEX_RUNNER_HOST: "127.0.0.1",
        DEVEX_RUNNER_PORT: "0",
        DEVEX_LOG_LEVEL: "silent",
      });
      const runner = await startRunner(config, { log });
      runners.set(pod.metadata.uid, { replId: config.replId, runner });
      const health = await fetch(`http://127.0.0.1:${runner.port}/healthz`);
      if (health.status !== 200) throw new Error(`readiness probe failed: HTTP ${health.status}`);
    },

    async stopPod(pod) {
      const r = runners.get(pod.metadata.uid);
      runners.delete(pod.metadata.uid);
      await r?.runner.close();
      await sidecars.get(pod.metadata.uid)?.close();
      sidecars.delete(pod.metadata.uid);
      await rm(join(opts.root, pod.metadata.uid), { recursive: true, force: true });
    },

    persistUrl(pod) {
      const s = sidecars.get(pod.metadata?.uid ?? "");
      return s && `http://127.0.0.1:${s.port}`;
    },

    runnerUrl(replId) {
      const live = [...runners.values()].filter((r) => r.replId === replId);
      const r = live[live.length - 1];
      return r && `http://127.0.0.1:${r.runner.port}`;
    },
  };
}
