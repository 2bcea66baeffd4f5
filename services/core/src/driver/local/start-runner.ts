/**
 * Starting a local runner: take a pooled runner process (pool.ts) with its network (moved to the
 * repl's policy), restore the repl's home into its slot (runner-sync.ts), name the slot after the
 * repl, hand the process its configuration while the workspace is restored, wait until /healthz
 * answers. A start that fails kills the process and removes its folder, so nothing keeps running.
 */
import { get as httpGet } from "node:http";
import { join } from "node:path";
import type { PoolToRunner, RunnerToPool } from "../../../../../lib/contracts/pooled-runner.js";
import type { DriverProgress, StartedRunner, StartRequest } from "../driver.js";
import { hostnameFor } from "../repl-identity.js";
import { nameRepl } from "./identity.js";
import { networkForRepl } from "./network/connect.js";
import type { EgressSetup } from "./network/egress.js";
import { abortable, killPooled, type PooledProcess, type RunnerPool, writeRecord } from "./pool.js";
import { pinSocket } from "./runner-folder.js";
import {
  type AssignedRecord,
  type Handle,
  newHandle,
  type RunnerTarget,
  serial,
  targetOf,
  urlOf,
} from "./runner-handle.js";
import type { Sandbox } from "./sandbox.js";
import { type StopDeps, stopRunner } from "./stop-runner.js";

/** What the driver's options say about each runner it starts. */
export interface RunnerSettings {
  /** Runner idle timeout before it reports itself idle (default 10 minutes). */
  idleTimeoutMs?: number;
  /** Runner heartbeat period until core answers with its own. */
  heartbeatIntervalMs?: number;
  access?: "proxied" | "direct";
  runnerLogLevel?: string;
}

export interface StartDeps extends StopDeps {
  pool: RunnerPool;
  /** Outbound network for repls (network/egress.ts); undefined: none. */
  egress?: EgressSetup;
  sandbox: Sandbox;
  /** Runners in their own network namespace, reached over Unix sockets. */
  privateNetwork: boolean;
  settings: RunnerSettings;
}

export async function startRunner(
  d: StartDeps,
  req: StartRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
): Promise<StartedRunner> {
  const began = Date.now();
  await d.runners.afterLastPersist(req.replId);
  await replaceOld(d, req, signal);
  const p = await d.pool.take(signal);
  const h = newHandle(assignedRecord(d, req, p), p.dir, p.child);
  // The network (connected in the pool, or now) gets the repl's policy while the workspace is
  // restored: both before any code of the repl's runs.
  const network = networkForRepl(
    d.egress,
    p.network,
    { replId: req.replId, pid: p.record.pid, policy: req.egress },
    d.log,
    signal,
  );
  network.catch(() => {});
  try {
    // No code of the repl's has run in this slot yet, nor will before the start returns: nothing can
    // race the restore. The runner itself starts beside the workspace's restore (it opens only the
    // root), after the home's (it seeds an empty home).
    await d.sync.restoreHome(h, p.slot.owner, signal);
    await nameRepl(p.slot.identity, hostnameFor(req.replId));
    h.network = await network;
    h.record.pasta = h.network?.pastaProcess;
    const port = assign(p, runnerEnv(d, req, p), signal);
    port.catch(() => {});
    await d.sync.restoreWorkspace(h, p.slot.owner, signal, progress);
    h.record.port = await port;
    if (h.record.socketPath) h.socketFd = pinSocket(h.record.socketPath);
    await writeRecord(p.dir, h.record);
    d.runners.add(h);
    d.runners.watchChild(h);
    if (!(await healthy(targetOf(h), signal))) throw new Error("runner did not answer /healthz");
  } catch (err) {
    h.gone = true;
    void network.then(
      (n) => n?.close(),
      () => {},
    );
    await killPooled(p);
    await d.runners.forget(h);
    throw err;
  }
  d.runners.startTimer(h);
  const { record } = h;
  d.log.info(
    { replId: req.replId, runnerId: req.runnerId, pid: record.pid, port: record.port, ms: Date.now() - began },
    "runner started",
  );
  return { runnerId: req.runnerId, url: clientUrl(d, req, h) };
}

/** A runner of the repl still running (core lost track of it): stopped before the new one starts. */
async function replaceOld(d: StartDeps, req: StartRequest, signal: AbortSignal) {
  const old = d.runners.liveFor(req.replId);
  if (!old) return;
  d.log.warn({ replId: req.replId, runnerId: old.record.runnerId }, "a runner was still running: stopping it first");
  await serial(old, () => stopRunner(d, old, { ...req, runnerId: old.record.runnerId, reason: "replaced" }, signal));
}

function assignedRecord(d: StartDeps, req: StartRequest, p: PooledProcess): AssignedRecord {
  return {
    ...p.record,
    state: "assigned",
    runnerId: req.runnerId,
    replId: req.replId,
    owner: req.owner,
    workspacePrefix: req.workspacePrefix,
    workspace: p.slot.workspace,
    home: p.slot.home,
    homePrefix: req.homePrefix || undefined,
    egress: req.egress,
    port: 0,
    socketPath: d.privateNetwork ? join(p.slot.run, "r.sock") : undefined,
  };
}

/** The runner's configuration (services/runner/src/config.ts), with paths as its sandbox shows them. */
function runnerEnv(d: StartDeps, req: StartRequest, p: PooledProcess): Record<string, string> {
  const inside = p.launch;
  const env: Record<string, string> = {
    DEVEX_RUNNER_WORKSPACE: inside.workspace,
    DEVEX_RUNNER_HOME: inside.home,
    DEVEX_RUNNER_PORT: "0",
    DEVEX_RUNNER_HOST: "127.0.0.1",
    DEVEX_REPL_ID: req.replId,
    DEVEX_TOKEN_PUBLIC_KEY: d.signer.publicKeyPem,
    DEVEX_CORE_URL: req.coreUrl,
    DEVEX_RUNNER_ID: req.runnerId,
    DEVEX_RUNNER_CONTROL_TOKEN: req.controlToken,
    DEVEX_IDLE_TIMEOUT: String(d.settings.idleTimeoutMs ?? 10 * 60_000),
    DEVEX_HEARTBEAT_INTERVAL: String(d.settings.heartbeatIntervalMs ?? 30_000),
    DEVEX_RUNNER_COMMAND_PREFIX: JSON.stringify(
      d.sandbox.prefix({
        workspace: inside.workspace,
        home: inside.home,
        hostname: hostnameFor(req.replId),
        sharedNet: d.privateNetwork,
      }),
    ),
    DEVEX_LOG_LEVEL: d.settings.runnerLogLevel ?? "info",
  };
  if (d.privateNetwork && inside.control) {
    env.DEVEX_RUNNER_SOCKET = join(inside.run, "r.sock");
    env.DEVEX_CORE_SOCKET = join(inside.control, "core.sock");
  }
  return env;
}

/** Hands the pooled process its configuration; resolves with the port it listens on (0 on a socket). */
function assign(p: PooledProcess, env: Record<string, string>, signal: AbortSignal): Promise<number> {
  const started = new Promise<number>((resolvePort, reject) => {
    p.child.on("message", (m: RunnerToPool) => {
      if (m?.type === "started") resolvePort(m.port);
      if (m?.type === "failed") reject(new Error(`runner failed to start: ${m.message}`));
    });
    p.child.once("exit", (code, sig) => reject(new Error(`runner exited during start (${sig ?? code})`)));
  });
  const message: PoolToRunner = { type: "assign", env };
  p.child.send(message);
  return abortable(started, AbortSignal.any([signal, AbortSignal.timeout(20_000)]));
}

function healthy(t: RunnerTarget, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(
      `${t.url}/healthz`,
      { socketPath: t.socketPath, signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]), agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("error", () => resolve(false));
  });
}

/** Clients reach the runner through core's proxy at `<coreUrl>/<replId>`, or directly. */
function clientUrl(d: StartDeps, req: StartRequest, h: Handle): string {
  return d.settings.access === "direct" ? urlOf(h) : `${req.coreUrl.replace(/\/+$/, "")}/${req.replId}`;
}
