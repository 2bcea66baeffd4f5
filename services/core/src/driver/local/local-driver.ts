/**
 * The local driver: each repl's runner is a process on this machine (the embedded setup's default).
 *
 * start: take a pooled runner process (pool.ts), restore `repl/<user>/<replId>/` into its slot's
 *   workspace and `home/<user>/<replId>/` into its home (lib/sync, files owned by the sandbox's uid),
 *   hand it its configuration, wait until /healthz answers. The runner runs in its own sandbox (sandbox.ts) that sees only its slot.
 * stop: persist (runner still fully usable if that fails) → Drain over RunnerAdminService → persist
 *   what changed while draining → SIGTERM the runner → remove its folder. Any persist failure
 *   throws Unavailable and leaves runner and workspace as they are; the next stop tries again.
 * "Persist" is always both: the workspace, then the home minus caches (lib/sync/home.ts).
 * While a runner runs, its workspace is persisted every `persistIntervalMs`. A runner that dies takes
 * its sandbox's processes with it, so its workspace is persisted one last time, then removed; a new
 * start of that repl restores after that persist.
 *
 * Runner processes outlive a crashed core: each has a record (`<dataDir>/runners/<procId>/record.json`)
 * that a new driver reads at start-up to re-adopt live runners (core's reconciliation then stops any
 * no session points at) and to clean up after dead ones. Pooled, unassigned processes exit with core.
 *
 * Network: when the sandbox gives runners their own network namespace (bwrap, proxied access, no
 * DEVEX_SANDBOX_NETWORK), a runner listens on a Unix socket (`<dataDir>/runners/<procId>/run/r.sock`)
 * that core's proxy, health checks and Drain use, and reaches core's RunnerControlService through
 * core's own Unix socket (`coreSocketPath`, `<dataDir>/control/core.sock`, which core must listen
 * on). Otherwise runners use TCP loopback.
 *
 * Concurrency: as the Driver interface says; in addition each runner's persists, stop and removal
 * run one at a time on its own queue, and once a runner is gone (stopped or dead) a queued persist
 * does nothing, so a periodic persist can never run against a removed workspace.
 *
 * The parts: start-runner.ts, stop-runner.ts, runner-sync.ts (restore and persist of both trees),
 * runners.ts (the runners on the books, their persist timers, release and burial), adopt.ts
 * (re-adoption at start-up and the liveness poll), runner-handle.ts (one runner and its queue).
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BlobStore } from "../../../../../lib/blob/store.js";
import { failedPrecondition, unavailable } from "../../../../../lib/kit/errors.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import type { Driver, DriverProgress, EgressChange, PersistRequest, RunnerInfo } from "../driver.js";
import { adoptRunners, watchAdopted } from "./adopt.js";
import { connectRepl } from "./network/connect.js";
import { type EgressConfig, egressSetup } from "./network/egress.js";
import { RunnerPool, runnerCode, writeRecord } from "./pool.js";
import { type RunnerTarget, serial, targetOf, urlOf } from "./runner-handle.js";
import { RunnerSync } from "./runner-sync.js";
import { isLive, Runners } from "./runners.js";
import type { Sandbox } from "./sandbox.js";
import { type StartDeps, startRunner } from "./start-runner.js";
import { stopRunner } from "./stop-runner.js";

export type { RunnerTarget } from "./runner-handle.js";

/** How long a pooled runner's network may take to connect (pasta and nft) before it waits without one. */
const POOL_CONNECT_TIMEOUT_MS = 15_000;

export interface LocalDriverOptions {
  /** Holds `runners/` (one folder per runner process, its slot with it) and `control/` (core's socket for private networks). */
  dataDir: string;
  blobs: BlobStore;
  /** Mints the runner-admin tokens for Drain; its public key verifies the runners' access tokens. */
  signer: TokenSigner;
  sandbox: Sandbox;
  log: Logger;
  /** Pre-forked runner processes kept ready (default 2; 0 forks on demand). */
  poolSize?: number;
  /** Periodic persist while a runner runs; 0 turns it off (default 5 minutes). */
  persistIntervalMs?: number;
  /** Runner idle timeout before it reports itself idle (default 10 minutes). */
  idleTimeoutMs?: number;
  /** Runner heartbeat period until core answers with its own. */
  heartbeatIntervalMs?: number;
  /** "proxied": clients reach runners through core at `<coreUrl>/<replId>` (one origin); "direct": at the runner's port. */
  access?: "proxied" | "direct";
  /** Objects transferred at once by restore/persist (default 32). */
  syncConcurrency?: number;
  /** Attempts per object before a persist fails (default 4). */
  syncAttempts?: number;
  runnerLogLevel?: string;
  /** Outbound network for repls (DEVEX_EGRESS*); absent: repls have none. */
  egress?: EgressConfig;
}

export interface LocalDriver extends Driver {
  /** For logs: how repls reach the outside, or why they cannot. */
  readonly networkDescription: string;
  /** Where core's proxy sends `/<replId>/…`, if the repl has a live runner. */
  targetFor(replId: string): RunnerTarget | undefined;
  /**
   * The Unix socket core must also listen on (startServer's socketPath) for runners in their own
   * network namespace to reach RunnerControlService; undefined when runners use TCP.
   */
  readonly coreSocketPath?: string;
  /** Pooled processes ready now (the lifecycle bench waits for a warm pool). */
  poolReady(): number;
  /** Persists and stops every runner (Ctrl-C); returns what was stopped. */
  shutdown(signal: AbortSignal): Promise<Array<{ replId: string; runnerId: string; persistTime?: number }>>;
  /** Stops the pool and timers, leaving assigned runners running (a core restart re-adopts them). */
  close(): Promise<void>;
}

function runnerEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", SHELL: "/bin/bash" };
  for (const k of ["LANG", "LC_ALL", "TZ"]) if (process.env[k]) env[k] = process.env[k]!;
  env.LANG ??= "C.UTF-8";
  return env;
}

/** A running runner's new policy: in its record (for a later core) and in its network now. */
async function setRunnerEgress(runners: Runners, change: EgressChange, signal: AbortSignal): Promise<void> {
  const h = runners.get(change.runnerId);
  if (!h || h.gone) return;
  h.record.egress = change.egress;
  await writeRecord(h.dir, h.record);
  await h.network?.setPolicy(change.egress, signal);
}

export async function createLocalDriver(o: LocalDriverOptions): Promise<LocalDriver> {
  const { log } = o;
  const dataDir = resolve(o.dataDir);
  const runnersDir = join(dataDir, "runners");
  // Runners get their own network namespace only when clients reach them through core's proxy.
  const privateNetwork = o.access !== "direct" && o.sandbox.privateRunnerNetwork;
  const controlDir = join(dataDir, "control");
  const coreSocketPath = privateNetwork ? join(controlDir, "core.sock") : undefined;
  if (privateNetwork) await mkdir(controlDir, { recursive: true, mode: 0o755 });
  const { setup: egress, description: networkDescription } = o.egress
    ? egressSetup(o.egress, privateNetwork)
    : { setup: undefined, description: "none (not configured)" };
  const pool = new RunnerPool({
    runnersDir,
    size: o.poolSize ?? 2,
    env: runnerEnv(),
    uids: o.sandbox.uids,
    launch: (paths) => {
      const slot = {
        ...paths,
        control: privateNetwork ? controlDir : undefined,
        code: runnerCode,
        hostNetwork: !privateNetwork,
      };
      return { slot, launch: o.sandbox.runnerLaunch(slot) };
    },
    connect:
      egress &&
      ((pid) =>
        connectRepl(egress, { pid, policy: egress.pooledPolicy }, log, AbortSignal.timeout(POOL_CONNECT_TIMEOUT_MS))),
    log,
  });
  const sync = new RunnerSync({ blobs: o.blobs, log, concurrency: o.syncConcurrency, attempts: o.syncAttempts });
  const runners = new Runners({ log, sync, persistIntervalMs: o.persistIntervalMs });
  const d: StartDeps = {
    log,
    sync,
    runners,
    signer: o.signer,
    pool,
    sandbox: o.sandbox,
    privateNetwork,
    settings: o,
    egress,
  };

  await adoptRunners(runnersDir, runners, log, egress);
  const poll = watchAdopted(runners, log);
  pool.fill();

  return {
    start: (req, signal, progress) => startRunner(d, req, signal, progress),

    async stop(req, signal, progress) {
      const h = runners.get(req.runnerId);
      if (!h || h.gone) {
        await runners.afterLastPersist(req.replId);
        return { persistTime: sync.persistedAt(req.replId) ?? Date.now() };
      }
      return serial(h, () =>
        h.gone ? Promise.resolve({ persistTime: Date.now() }) : stopRunner(d, h, req, signal, progress),
      );
    },

    persist: (req, signal, progress) => persistRunning(runners, sync, log, req, signal, progress),

    async status(runnerId) {
      const h = runners.get(runnerId);
      return h && isLive(h) ? "running" : "stopped";
    },

    async list(): Promise<RunnerInfo[]> {
      return runners.live().map((h) => ({ runnerId: h.record.runnerId, replId: h.record.replId, url: urlOf(h) }));
    },

    targetFor(replId) {
      const h = runners.liveFor(replId);
      return h ? targetOf(h) : undefined;
    },

    setEgress: (change, signal) => setRunnerEgress(runners, change, signal),

    coreSocketPath,

    networkDescription,
    egressNotEnforced: egress ? undefined : networkDescription,

    poolReady: () => pool.readyCount(),

    async shutdown(signal) {
      await pool.close();
      const handles = runners.all().filter((h) => !h.gone);
      return Promise.all(
        handles.map(async (h) => {
          const { replId, runnerId, owner } = h.record;
          const req = {
            replId,
            runnerId,
            owner,
            workspacePrefix: h.record.workspacePrefix!,
            reason: "core is shutting down",
          };
          try {
            const { persistTime } = await serial(h, () => stopRunner(d, h, req, signal));
            return { replId, runnerId, persistTime };
          } catch (err) {
            log.error({ err, replId }, "could not persist a repl at shutdown; its runner keeps running");
            return { replId, runnerId };
          }
        }),
      );
    },

    async close() {
      await pool.close();
      clearInterval(poll);
      runners.stopTimers();
    },
  };
}

/** Driver.persist: a running runner's trees saved now, on its queue, the runner left running. */
async function persistRunning(
  runners: Runners,
  sync: RunnerSync,
  log: Logger,
  req: PersistRequest,
  signal: AbortSignal,
  progress?: (p: DriverProgress) => void,
) {
  const h = runners.get(req.runnerId);
  const gone = () => failedPrecondition(`the runner of repl ${req.replId} is gone; start the repl again`);
  if (!h || h.gone) throw gone();
  return serial(h, async () => {
    if (h.gone) throw gone();
    const saved = await sync.persist(h, signal, progress, "watched").catch((err) => {
      log.warn({ err, replId: req.replId }, "persisting the workspace failed");
      throw unavailable("persisting the workspace failed; the repl keeps running as it was, try again", err);
    });
    // Refused (the workspace is gone or is not the one restored): nothing current is stored.
    if (!saved) throw failedPrecondition(`the workspace of repl ${req.replId} could not be saved; restart the repl`);
    return { persistTime: h.lastPersist ?? Date.now() };
  });
}
