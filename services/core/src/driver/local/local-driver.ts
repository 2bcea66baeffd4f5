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
 */
import type { ChildProcess } from "node:child_process";
import { closeSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { join, resolve } from "node:path";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { BlobStore } from "../../../../../lib/blob/store.js";
import { runnerAdminClientFor } from "../../../../../lib/client/node.js";
import { Audience } from "../../../../../lib/contracts/runner-access.js";
import { unavailable } from "../../../../../lib/kit/errors.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import { isAlive, waitForExit } from "../../../../../lib/kit/pids.js";
import type { TokenSigner } from "../../../../../lib/kit/tokens.js";
import { excludeFromHome } from "../../../../../lib/sync/home.js";
import {
  persist,
  restore,
  type SyncProgress,
  type SyncResult,
  WorkspaceMissingError,
  WorkspaceReplacedError,
} from "../../../../../lib/sync/sync.js";
import { someNames } from "../../../../../lib/sync/util.js";
import type { Driver, DriverProgress, RunnerInfo, StartRequest, StopRequest } from "../driver.js";
import { hostnameFor } from "../repl-identity.js";
import { nameRepl } from "./identity.js";
import {
  abortable,
  killPooled,
  processMarker,
  RunnerPool,
  type RunnerRecord,
  runnerCode,
  writeRecord,
} from "./pool.js";
import { pinnedPath, pinSocket, removeFolder } from "./runner-folder.js";
import type { Sandbox } from "./sandbox.js";

export interface LocalDriverOptions {
  /** Holds `workspaces/` and `runners/`. */
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
}

/** Where a runner answers: its URL, and the Unix socket to connect to instead of the URL's host:port. */
export interface RunnerTarget {
  url: string;
  socketPath?: string;
}

export interface LocalDriver extends Driver {
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

interface Handle {
  record: RunnerRecord & { runnerId: string; replId: string; workspace: string; port: number; owner: string };
  dir: string;
  child?: ChildProcess;
  timer?: NodeJS.Timeout;
  /** Serialises persist and stop for this runner. */
  queue: Promise<unknown>;
  lastPersist?: number;
  gone: boolean;
  /** The runner's socket, pinned (runner-folder.ts); undefined on TCP. */
  socketFd?: number;
}

async function isOurProcess(pid: number, procId: string): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    const i = cmdline.indexOf(processMarker);
    return i >= 0 && cmdline[i + 1] === procId;
  } catch {
    return false;
  }
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

function runnerEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", SHELL: "/bin/bash" };
  for (const k of ["LANG", "LC_ALL", "TZ"]) if (process.env[k]) env[k] = process.env[k]!;
  env.LANG ??= "C.UTF-8";
  return env;
}

export async function createLocalDriver(o: LocalDriverOptions): Promise<LocalDriver> {
  const { log, blobs } = o;
  const dataDir = resolve(o.dataDir);
  const runnersDir = join(dataDir, "runners");
  const byRunner = new Map<string, Handle>();
  /** When each repl was last persisted by this driver: what a stop of an already dead runner reports. */
  const lastPersisted = new Map<string, number>();
  // Runners get their own network namespace only when clients reach them through core's proxy.
  const privateNetwork = o.access !== "direct" && o.sandbox.privateRunnerNetwork;
  const controlDir = join(dataDir, "control");
  const coreSocketPath = privateNetwork ? join(controlDir, "core.sock") : undefined;
  if (privateNetwork) await mkdir(controlDir, { recursive: true, mode: 0o755 });
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
    log,
  });
  /** The manifests of a runner's workspace and home: in its folder, outside what its sandbox sees. */
  const manifestOf = (h: { dir: string }) => join(h.dir, "manifest.json");
  const homeManifestOf = (h: { dir: string }) => join(h.dir, "home-manifest.json");
  const urlOf = (h: Handle) => (h.record.socketPath ? "http://localhost" : `http://127.0.0.1:${h.record.port}`);
  const targetOf = (h: Handle): RunnerTarget => ({
    url: urlOf(h),
    socketPath: h.socketFd === undefined ? undefined : pinnedPath(h.socketFd),
  });
  /** Drops a runner from the driver's books: its timer, its entry, its pinned socket. */
  const release = (h: Handle) => {
    h.gone = true;
    clearInterval(h.timer);
    byRunner.delete(h.record.runnerId);
    if (h.socketFd !== undefined) closeSync(h.socketFd);
    h.socketFd = undefined;
  };
  const liveHandleFor = (replId: string) =>
    [...byRunner.values()].find((h) => h.record.replId === replId && !h.gone && isAlive(h.record.pid));

  /** Forwards sync progress to core (WatchRepl) and logs long transfers every 2 s with counts and bytes. */
  const report = (replId: string, progress?: (p: DriverProgress) => void) => {
    let lastLog = Date.now();
    return (p: SyncProgress) => {
      progress?.({ ...p });
      if (Date.now() - lastLog < 2000 || p.filesDone === p.filesTotal) return;
      lastLog = Date.now();
      log.info(
        { replId, ...p },
        `${p.phase}: ${p.filesDone}/${p.filesTotal} files, ${p.bytesDone}/${p.bytesTotal} bytes`,
      );
    };
  };

  function logSync(what: string, replId: string, r: SyncResult) {
    log.info(
      {
        replId,
        files: r.files,
        bytes: r.bytes,
        transferred: r.transferred,
        transferredBytes: r.transferredBytes,
        deleted: r.deleted,
        skipped: r.skipped.length,
        ms: r.ms,
      },
      `${what}: ${r.transferred} files (${r.transferredBytes} bytes) of ${r.files} in ${r.ms} ms`,
    );
    // What did not come through as it is (lib/sync's rules), by name, so a user's question has an answer.
    if (r.skipped.length || r.hardLinked.length) {
      log.warn(
        { replId, skipped: someNames(r.skipped), hardLinked: someNames(r.hardLinked) },
        `${what}: ${r.skipped.length} special files or unstorable names left out, ${r.hardLinked.length} hard links kept as separate copies`,
      );
    }
  }

  /**
   * Persists a runner's workspace, then its home; returns undefined when lib/sync refuses because the
   * workspace is gone or is not the one restored (nothing stored is touched then, and there is
   * nothing to save). A home refused the same way is logged and kept as stored.
   */
  async function persistWorkspace(h: Handle, signal: AbortSignal, progress?: (p: DriverProgress) => void) {
    const refused = (what: string) => (err: unknown) => {
      if (!(err instanceof WorkspaceMissingError || err instanceof WorkspaceReplacedError)) throw err;
      log.error({ err, replId: h.record.replId }, `persist refused: the stored ${what} is kept as it was`);
      return undefined;
    };
    const common = { store: blobs, concurrency: o.syncConcurrency, attempts: o.syncAttempts, signal };
    const r = await persist({
      ...common,
      prefix: h.record.workspacePrefix!,
      dir: h.record.workspace,
      manifestPath: manifestOf(h),
      onProgress: report(h.record.replId, progress),
    }).catch(refused("workspace"));
    if (!r) return undefined;
    logSync("persisted", h.record.replId, r);
    if (h.record.homePrefix && h.record.home) {
      const home = await persist({
        ...common,
        prefix: h.record.homePrefix,
        dir: h.record.home,
        manifestPath: homeManifestOf(h),
        exclude: excludeFromHome,
      }).catch(refused("home"));
      if (home) logSync("persisted the home", h.record.replId, home);
    }
    h.lastPersist = Date.now();
    lastPersisted.set(h.record.replId, h.lastPersist);
    return r;
  }

  /** Runs `fn` after whatever else this runner is doing (persist or stop). */
  function serial<T>(h: Handle, fn: () => Promise<T>): Promise<T> {
    const run = h.queue.then(fn, fn);
    h.queue = run.catch(() => {});
    return run;
  }

  function startTimer(h: Handle) {
    const every = o.persistIntervalMs ?? 5 * 60_000;
    if (every <= 0) return;
    h.timer = setInterval(() => {
      if (h.gone) return;
      // Checked again once its turn comes: a stop queued before it may have removed the workspace.
      void serial(h, async () => {
        if (!h.gone) await persistWorkspace(h, AbortSignal.timeout(10 * 60_000));
      }).catch((err) => log.warn({ err, replId: h.record.replId }, "periodic persist failed; will retry"));
    }, every);
    h.timer.unref();
  }

  /**
   * Forgets a runner and removes its folder (its workspace with it). Queued behind any persist in
   * flight, so a persist never sees its workspace vanish halfway.
   */
  function forget(h: Handle): Promise<void> {
    release(h);
    return serial(h, () => removeFolder(h.dir, log));
  }

  /** A dead runner's last persist, by repl: a new start of that repl restores only after it. */
  const lastPersists = new Map<string, Promise<void>>();

  /**
   * A runner died. Every process of its sandbox died with it (it was their pid 1), so nothing
   * changes its workspace any more: persist what changed since the last persist, then remove it.
   */
  function buryDead(h: Handle): void {
    const { replId } = h.record;
    release(h);
    const done = serial(h, async () => {
      await persistWorkspace(h, AbortSignal.timeout(10 * 60_000)).catch((err) =>
        log.warn(
          { err, replId },
          "could not persist a dead runner's workspace: the repl keeps its last persisted state",
        ),
      );
      await removeFolder(h.dir, log);
    });
    lastPersists.set(replId, done);
    void done.finally(() => {
      if (lastPersists.get(replId) === done) lastPersists.delete(replId);
    });
  }

  function watchChild(h: Handle) {
    h.child?.once("exit", (code, sig) => {
      if (h.gone) return;
      log.warn({ replId: h.record.replId, runnerId: h.record.runnerId, code, signal: sig }, "runner process died");
      buryDead(h);
    });
  }

  async function kill(h: Handle) {
    const { pid } = h.record;
    if (!isAlive(pid)) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch {}
    if (await waitForExit(pid, 5000)) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    await waitForExit(pid, 1000);
  }

  async function drain(h: Handle, reason: string) {
    const token = o.signer.mint({ aud: Audience.runnerAdmin, sub: "core", repl: h.record.replId, scope: [] }, 300);
    const socketPath = h.socketFd !== undefined ? pinnedPath(h.socketFd) : undefined;
    const admin = runnerAdminClientFor(urlOf(h), { token, socketPath });
    await admin.drain({ reason, gracePeriod: durationFromMs(2000) }, { timeoutMs: 15_000 });
  }

  // Re-adopt runners a previous core left running; clean up after dead ones and stray pool processes.
  for (const procId of await readdir(runnersDir).catch(() => [] as string[])) {
    const dir = join(runnersDir, procId);
    let record: RunnerRecord | undefined;
    try {
      record = JSON.parse(await readFile(join(dir, "record.json"), "utf8")) as RunnerRecord;
    } catch {}
    const ours = record ? await isOurProcess(record.pid, procId) : false;
    if (
      record?.state === "assigned" &&
      ours &&
      record.runnerId &&
      record.replId &&
      record.workspace &&
      (record.port || record.socketPath)
    ) {
      const h: Handle = { record: record as Handle["record"], dir, queue: Promise.resolve(), gone: false };
      try {
        if (record.socketPath) h.socketFd = pinSocket(record.socketPath);
      } catch (err) {
        log.warn({ err, replId: record.replId }, "a runner's socket is not what it should be: stopping it");
        try {
          process.kill(record.pid, "SIGKILL");
        } catch {}
        await waitForExit(record.pid, 5000);
        await removeFolder(dir, log);
        continue;
      }
      byRunner.set(record.runnerId, h);
      startTimer(h);
      log.info({ replId: record.replId, runnerId: record.runnerId, pid: record.pid }, "re-adopted a running runner");
      continue;
    }
    if (record && ours) {
      try {
        process.kill(record.pid, "SIGKILL");
      } catch {}
      await waitForExit(record.pid, 5000);
    }
    await removeFolder(dir, log);
  }
  // Adopted runners are not our children: notice their death by polling.
  const poll = setInterval(() => {
    for (const h of byRunner.values()) {
      if (!h.child && !h.gone && !isAlive(h.record.pid)) {
        log.warn({ replId: h.record.replId, runnerId: h.record.runnerId }, "adopted runner process died");
        buryDead(h);
      }
    }
  }, 2000);
  poll.unref();
  pool.fill();

  async function stopRunner(h: Handle, req: StopRequest, signal: AbortSignal, progress?: (p: DriverProgress) => void) {
    const replId = h.record.replId;
    let persistTime = h.lastPersist ?? Date.now();
    if (req.persist !== false && req.workspacePrefix) {
      const failed = (err: unknown): never => {
        log.warn({ err, replId }, "persisting the workspace failed; the runner and its workspace stay");
        throw unavailable("persisting the workspace failed, so the repl keeps running; try stopping it again", err);
      };
      // First while the runner is fully usable, so a failure leaves the repl working.
      await persistWorkspace(h, signal, progress).catch(failed);
      await drain(h, req.reason).catch((err) => log.warn({ err, replId }, "drain failed; stopping anyway"));
      await persistWorkspace(h, signal, progress).catch(failed);
      persistTime = Date.now();
    }
    h.gone = true;
    await kill(h);
    // Already on this runner's queue: remove the folder here rather than queueing behind ourselves.
    release(h);
    await removeFolder(h.dir, log);
    log.info({ replId, runnerId: req.runnerId, reason: req.reason }, "runner stopped");
    return { persistTime };
  }

  const driver: LocalDriver = {
    async start(req: StartRequest, signal, progress) {
      const began = Date.now();
      await lastPersists.get(req.replId);
      const old = liveHandleFor(req.replId);
      if (old) {
        log.warn(
          { replId: req.replId, runnerId: old.record.runnerId },
          "a runner was still running: stopping it first",
        );
        await serial(old, () => stopRunner(old, { ...req, runnerId: old.record.runnerId, reason: "replaced" }, signal));
      }
      const p = await pool.take(signal);
      const workspace = p.slot.workspace;
      const record = {
        ...p.record,
        state: "assigned" as const,
        runnerId: req.runnerId,
        replId: req.replId,
        owner: req.owner,
        workspacePrefix: req.workspacePrefix,
        workspace,
        home: p.slot.home,
        homePrefix: req.homePrefix || undefined,
        port: 0,
        socketPath: privateNetwork ? join(p.slot.run, "r.sock") : undefined,
      };
      const h: Handle = { record, dir: p.dir, child: p.child, queue: Promise.resolve(), gone: false };
      try {
        // No code of the repl's has run in this slot yet: nothing can race the restore.
        const restored = await restore({
          store: blobs,
          prefix: req.workspacePrefix,
          dir: workspace,
          manifestPath: manifestOf(h),
          owner: p.slot.owner,
          concurrency: o.syncConcurrency,
          attempts: o.syncAttempts,
          signal,
          onProgress: report(req.replId, progress),
        });
        logSync("restored", req.replId, restored);
        if (record.homePrefix) {
          const home = await restore({
            store: blobs,
            prefix: record.homePrefix,
            dir: p.slot.home,
            manifestPath: homeManifestOf(h),
            owner: p.slot.owner,
            concurrency: o.syncConcurrency,
            attempts: o.syncAttempts,
            signal,
          });
          logSync("restored the home", req.replId, home);
        }
        await nameRepl(p.slot.identity, hostnameFor(req.replId));
        const inside = p.launch;
        const env: Record<string, string> = {
          DEVEX_RUNNER_WORKSPACE: inside.workspace,
          DEVEX_RUNNER_HOME: inside.home,
          DEVEX_RUNNER_PORT: "0",
          DEVEX_RUNNER_HOST: "127.0.0.1",
          DEVEX_REPL_ID: req.replId,
          DEVEX_TOKEN_PUBLIC_KEY: o.signer.publicKeyPem,
          DEVEX_CORE_URL: req.coreUrl,
          DEVEX_RUNNER_ID: req.runnerId,
          DEVEX_RUNNER_CONTROL_TOKEN: req.controlToken,
          DEVEX_IDLE_TIMEOUT: String(o.idleTimeoutMs ?? 10 * 60_000),
          DEVEX_HEARTBEAT_INTERVAL: String(o.heartbeatIntervalMs ?? 30_000),
          DEVEX_RUNNER_COMMAND_PREFIX: JSON.stringify(
            o.sandbox.prefix({
              workspace: inside.workspace,
              home: inside.home,
              hostname: hostnameFor(req.replId),
              sharedNet: privateNetwork,
            }),
          ),
          DEVEX_LOG_LEVEL: o.runnerLogLevel ?? "info",
        };
        if (privateNetwork && inside.control) {
          env.DEVEX_RUNNER_SOCKET = join(inside.run, "r.sock");
          env.DEVEX_CORE_SOCKET = join(inside.control, "core.sock");
        }
        const started = new Promise<number>((resolvePort, reject) => {
          p.child.on("message", (m: { type?: string; port?: number; message?: string }) => {
            if (m?.type === "started") resolvePort(m.port!);
            if (m?.type === "failed") reject(new Error(`runner failed to start: ${m.message}`));
          });
          p.child.once("exit", (code, sig) => reject(new Error(`runner exited during start (${sig ?? code})`)));
        });
        p.child.send({ type: "assign", env });
        record.port = await abortable(started, AbortSignal.any([signal, AbortSignal.timeout(20_000)]));
        if (record.socketPath) h.socketFd = pinSocket(record.socketPath);
        await writeRecord(p.dir, record);
        byRunner.set(req.runnerId, h);
        watchChild(h);
        if (!(await healthy(targetOf(h), signal))) throw new Error("runner did not answer /healthz");
      } catch (err) {
        h.gone = true;
        await killPooled(p);
        await forget(h);
        throw err;
      }
      startTimer(h);
      log.info(
        { replId: req.replId, runnerId: req.runnerId, pid: record.pid, port: record.port, ms: Date.now() - began },
        "runner started",
      );
      const url = o.access === "direct" ? urlOf(h) : `${req.coreUrl.replace(/\/+$/, "")}/${req.replId}`;
      return { runnerId: req.runnerId, url };
    },

    async stop(req, signal, progress) {
      const h = byRunner.get(req.runnerId);
      if (!h || h.gone) {
        await lastPersists.get(req.replId);
        return { persistTime: lastPersisted.get(req.replId) ?? Date.now() };
      }
      return serial(h, () =>
        h.gone ? Promise.resolve({ persistTime: Date.now() }) : stopRunner(h, req, signal, progress),
      );
    },

    async status(runnerId) {
      const h = byRunner.get(runnerId);
      return h && !h.gone && isAlive(h.record.pid) ? "running" : "stopped";
    },

    async list(): Promise<RunnerInfo[]> {
      return [...byRunner.values()]
        .filter((h) => !h.gone && isAlive(h.record.pid))
        .map((h) => ({ runnerId: h.record.runnerId, replId: h.record.replId, url: urlOf(h) }));
    },

    targetFor(replId) {
      const h = liveHandleFor(replId);
      return h ? targetOf(h) : undefined;
    },

    coreSocketPath,

    poolReady: () => pool.readyCount(),

    async shutdown(signal) {
      await pool.close();
      const handles = [...byRunner.values()].filter((h) => !h.gone);
      return Promise.all(
        handles.map(async (h) => {
          const { replId, runnerId } = h.record;
          try {
            const { persistTime } = await serial(h, () =>
              stopRunner(
                h,
                {
                  replId,
                  runnerId,
                  owner: h.record.owner,
                  workspacePrefix: h.record.workspacePrefix!,
                  reason: "core is shutting down",
                },
                signal,
              ),
            );
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
      for (const h of byRunner.values()) clearInterval(h.timer);
    },
  };
  return driver;
}
