/**
 * Builds a runner from its config: the workspace, registries, services, auth, the WebSocket
 * bridge, the preview proxy and (when core is configured) heartbeats and idle reports, all on one
 * port. main.ts calls this with config from the environment; tests call it with their own.
 */

import { mkdir } from "node:fs/promises";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { StatusService } from "../../../gen/devex/runner/v1/status_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerAdminService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../lib/client/clients.js";
import { runnerControlClientFor } from "../../../lib/client/node.js";
import { authInterceptor } from "../../../lib/kit/auth.js";
import { clientAddressContext } from "../../../lib/kit/client-address.js";
import { unavailable } from "../../../lib/kit/errors.js";
import type { Logger } from "../../../lib/kit/log.js";
import { killGroup } from "../../../lib/kit/pids.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { createTokenVerifier } from "../../../lib/kit/tokens.js";
import { ActivityTracker, type Clock } from "./activity.js";
import { runnerAuditInterceptor } from "./audit/interceptor.js";
import { startAuditReporter } from "./audit/reporter.js";
import { createRunnerAuth, principalKey, type RunnerAuth, scopeInterceptor } from "./auth.js";
import type { RunnerConfig } from "./config.js";
import { type EnvironmentFeed, followEnvironment } from "./control/environment.js";
import { type GitRelay, startGitRelay } from "./control/git-relay.js";
import { IdleMonitor } from "./control/idle-monitor.js";
import { startSetup } from "./control/setup.js";
import { prepareHome } from "./home.js";
import { createPreviewProxy } from "./preview/proxy.js";
import { followPreviewSharing, OWNER_ONLY } from "./preview/sharing.js";
import { ProcessRegistry } from "./processes/registry.js";
import { createAdminService } from "./services/admin-service.js";
import { createFileService } from "./services/file-service.js";
import { createProcessService } from "./services/process-service.js";
import { createStatusService } from "./services/status-service.js";
import { createTerminalService } from "./services/terminal-service.js";
import { TerminalRegistry } from "./terminals/registry.js";
import { createWsBridge } from "./terminals/ws-bridge.js";
import { createTransferRoute } from "./transfer/route.js";
import { TransferTickets } from "./transfer/tickets.js";
import { Workspace } from "./workspace/paths.js";

/** FileService's bulk transfers, served without compression. */
const UNCOMPRESSED_FILE_METHODS = new Set(["UploadFile", "DownloadFile", "UploadArchive", "DownloadArchive"]);

/**
 * FileService, method by method: the streaming transfers are not compressed (what people move in
 * bulk is mostly compressed already, and gzip of a GiB is the repl's CPU), the other calls may be.
 */
function serveFiles(router: ConnectRouter, files: ReturnType<typeof createFileService>) {
  for (const method of FileService.methods) {
    const impl = (files as Record<string, unknown>)[method.localName] as Parameters<typeof router.rpc>[1];
    router.rpc(method, impl, UNCOMPRESSED_FILE_METHODS.has(method.name) ? { acceptCompression: [] } : undefined);
  }
}

/** The transfer tickets and limits FileService shares with the HTTP transfer route. */
function transfers(limits: RunnerConfig["limits"], workspace: Workspace, activity: ActivityTracker, log: Logger) {
  const tickets = new TransferTickets();
  const transfer = { maxUploadBytes: limits.maxUploadBytes, maxArchiveEntries: limits.maxArchiveEntries };
  const transferRoute = createTransferRoute({ workspace, tickets, limits: transfer, activity, log });
  return { tickets, transfer, transferRoute };
}

export interface RunnerOptions {
  log: Logger;
  clock?: Clock;
  /** How often idleness is checked (tests use a short one). */
  idleCheckIntervalMs?: number;
}

export interface Runner {
  readonly server: RunningServer;
  readonly url: string;
  readonly port: number;
  readonly workspace: Workspace;
  readonly terminals: TerminalRegistry;
  readonly processes: ProcessRegistry;
  readonly activity: ActivityTracker;
  readonly idleMonitor?: IdleMonitor;
  close(): Promise<void>;
}

/** The environment user commands start from: the runner's own, minus its configuration and secrets. */
export function userEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined || k.startsWith("DEVEX_") || k.startsWith("npm_")) continue;
    env[k] = v;
  }
  return env;
}

/** The workspace (created if missing) and the environment commands start from, with the repl's home. */
async function openWorkspace(config: RunnerConfig) {
  await mkdir(config.workspace, { recursive: true });
  const workspace = await Workspace.open(config.workspace);
  const baseEnv = userEnv();
  if (config.home) {
    await prepareHome(config.home);
    baseEnv.HOME = config.home;
  }
  return { workspace, baseEnv };
}

/** The repl's terminals and processes, started with the workspace's environment under the command prefix. */
function openRegistries(
  config: RunnerConfig,
  workspace: Workspace,
  baseEnv: (requested: Readonly<Record<string, string>>) => Promise<Record<string, string>>,
) {
  const { limits, commandPrefix } = config;
  return {
    terminals: new TerminalRegistry({
      workspace,
      baseEnv,
      commandPrefix,
      maxTerminals: limits.maxTerminals,
      scrollbackBytes: limits.scrollbackBytes,
    }),
    processes: new ProcessRegistry({
      workspace,
      baseEnv,
      commandPrefix,
      maxProcesses: limits.maxProcesses,
      outputBytes: limits.processOutputBytes,
    }),
  };
}

/** Heartbeats and idle reports to core, when the runner has a core to report to. */
function startIdleMonitor(
  config: RunnerConfig,
  options: RunnerOptions,
  client: RunnerControlClient | undefined,
  d: {
    activity: ActivityTracker;
    terminals: TerminalRegistry;
    processes: ProcessRegistry;
    onUnknownRunner: () => void;
    onControlToken?: (token: string) => void;
  },
): IdleMonitor | undefined {
  if (!config.core || !client) return undefined;
  const monitor = new IdleMonitor({
    client,
    replId: config.replId,
    runnerId: config.core.runnerId,
    activity: d.activity,
    counts: () => ({ terminals: d.terminals.running, processes: d.processes.running }),
    idleTimeoutMs: config.idleTimeoutMs,
    heartbeatIntervalMs: config.core.heartbeatIntervalMs,
    checkIntervalMs: options.idleCheckIntervalMs,
    log: options.log,
    onUnknownRunner: d.onUnknownRunner,
    onControlToken: d.onControlToken,
  });
  monitor.start();
  return monitor;
}

/**
 * The runner's one client of core's RunnerControlService (when it has a core) and the feeds of the
 * repl's settings over it: the preview rules and the environment. Without a core only the owner's
 * tokens open previews and the repl has no variables of its own.
 */
function coreLink(config: RunnerConfig, log: Logger) {
  if (!config.core) return undefined;
  const { url, socketPath, runnerId } = config.core;
  // Core renews the credential through Heartbeat (startIdleMonitor); every call reads the current one.
  let controlToken = config.core.controlToken;
  const client = runnerControlClientFor(url, { token: () => controlToken, socketPath });
  const ids = { client, replId: config.replId, runnerId, log };
  const renewToken = (token: string) => {
    controlToken = token;
  };
  return { client, ids, renewToken, sharing: followPreviewSharing(ids), environment: followEnvironment(ids) };
}

/**
 * The environment each process starts with: the repl's variables over the user's environment, as
 * they are then, then what the request asks for, then git's way to the repl's repository when core
 * holds a grant for it (last, so that a request's own GIT_CONFIG_COUNT adds to it, not drops it).
 */
function processEnvironment(
  baseEnv: Readonly<Record<string, string>>,
  feed: EnvironmentFeed | undefined,
  gitRelay: GitRelay | undefined,
) {
  return async (requested: Readonly<Record<string, string>> = {}) => {
    const variables = { ...baseEnv, ...(await feed?.variables()), ...requested };
    return { ...variables, ...gitRelay?.environment(variables) };
  };
}

/**
 * Commands run detached in their own process groups, so they would outlive a runner that exits
 * without close() (an uncaught error, process.exit): this kills them synchronously on the way out.
 */
function commandKiller(terminals: TerminalRegistry, processes: ProcessRegistry) {
  return () => {
    for (const t of terminals.list()) if (!t.exit) killGroup(t.pid, "SIGKILL");
    for (const pid of processes.runningPids()) killGroup(pid, "SIGKILL");
  };
}

export async function startRunner(config: RunnerConfig, options: RunnerOptions): Promise<Runner> {
  const { log } = options;
  const { workspace, baseEnv } = await openWorkspace(config);
  const { limits } = config;
  const core = coreLink(config, log);
  const gitRelay =
    core && (await startGitRelay({ ...core.ids, core: config.core!, remote: () => core.environment.gitRemote() }));
  const env = processEnvironment(baseEnv, core?.environment, gitRelay);
  const { terminals, processes } = openRegistries(config, workspace, env);
  const activity = new ActivityTracker(options.clock, () => processes.running);
  const auth = createRunnerAuth(createTokenVerifier(config.tokenPublicKeyPem), config.replId);
  let drainReason: string | undefined;
  const draining = () => drainReason;
  let serverPort = config.port;

  const wsBridge = createWsBridge({ auth, terminals, activity, log, draining });
  const rules = () => core?.sharing.rules() ?? OWNER_ONLY;
  const preview = createPreviewProxy({ auth, activity, log, ownPort: () => serverPort, replId: config.replId, rules });

  const { tickets, transfer, transferRoute } = transfers(limits, workspace, activity, log);

  const { audit, ...calls } = rpcChain(config, log, auth, activity, draining, core?.client);
  const server = await startServer({
    name: "runner",
    port: config.port,
    host: config.host,
    socketPath: config.socketPath,
    tcp: !config.socketPath,
    log,
    readMaxBytes: limits.maxMessageBytes,
    ...calls,
    routes(router) {
      serveFiles(router, createFileService({ workspace, maxFileRead: limits.maxFileRead, transfer, tickets }));
      // Terminal output is not compressed (nor is it on the WebSocket bridge): gzip of every frame
      // cost the runner a third more CPU, on the threadpool, and the client as much again.
      router.service(TerminalService, createTerminalService({ terminals, activity }), { acceptCompression: [] });
      // Nor is Exec's: its flow control counts output bytes, and gzip shrank `yes` a thousandfold on
      // the wire, so a slow client was still receiving 200 MB 17 s after a 3 s timeout killed it.
      router.service(ProcessService, createProcessService({ processes }), { acceptCompression: [] });
      router.service(
        StatusService,
        createStatusService({
          replId: config.replId,
          startTime: Date.now(),
          idleTimeoutMs: config.idleTimeoutMs,
          activity,
          terminals,
          processes,
          commandPrefix: config.commandPrefix,
        }),
      );
      router.service(
        RunnerAdminService,
        createAdminService({
          workspace,
          terminals,
          processes,
          log,
          startDraining: (reason) => (drainReason ??= reason),
        }),
      );
    },
    http: async (req, res) => (await transferRoute(req, res)) || preview.http(req, res),
    upgrade: (req, socket, head) => wsBridge(req, socket, head) || preview.upgrade(req, socket, head),
  }).catch(async (err) => {
    // No runner to close(): what started above stops here (a port in use, a socket path taken).
    core?.sharing.stop();
    core?.environment.stop();
    await gitRelay?.close();
    throw err;
  });
  serverPort = server.port;

  const idleMonitor = startIdleMonitor(config, options, core?.client, {
    activity,
    terminals,
    processes,
    onControlToken: core?.renewToken,
    onUnknownRunner: () => {
      drainReason ??= "core no longer knows this runner";
      void terminals.closeAll();
      void processes.killAll(2000);
    },
  });

  const setup = core && startSetup(config, core.client, processes, log);

  const killOnExit = commandKiller(terminals, processes);
  process.on("exit", killOnExit);

  let closing: Promise<void> | undefined;
  return {
    server,
    url: server.url,
    port: server.port,
    workspace,
    terminals,
    processes,
    activity,
    idleMonitor,
    close() {
      closing ??= (async () => {
        setup?.abort();
        idleMonitor?.stop();
        core?.sharing.stop();
        core?.environment.stop();
        await gitRelay?.close();
        drainReason ??= "the runner is stopping";
        await Promise.all([terminals.closeAll(200), processes.killAll(500)]);
        // The server first: calls that end as it closes record their events, then the reporter sends them.
        await server.close();
        await audit?.close();
        process.off("exit", killOnExit);
      })();
      return closing;
    },
  };
}

/**
 * What every RPC goes through: authentication, the audit log (which needs the caller; its reporter
 * when core is there to report to), the scope check (after the audit log, so refusals are recorded
 * with who was refused), activity; and the client's address in each call's context.
 */
function rpcChain(
  config: RunnerConfig,
  log: Logger,
  auth: RunnerAuth,
  activity: ActivityTracker,
  draining: () => string | undefined,
  client: RunnerControlClient | undefined,
) {
  const audit = startAuditReporter(config.core, config.replId, log, client);
  return {
    audit,
    interceptors: [
      authInterceptor(principalKey, (h, m) => auth.authenticate(h, m)),
      ...(audit ? [runnerAuditInterceptor(audit)] : []),
      scopeInterceptor(auth),
      activityInterceptor(activity, draining),
    ],
    // On its Unix socket only core's proxy reaches the runner, and it names the client in X-Forwarded-For.
    contextValues: clientAddressContext((req) => !req.socket?.remoteAddress || !!config.trustProxy),
  };
}

/** Counts RPCs as activity (GetStatus and admin calls excepted), open streams while they run, and refuses work while draining. */
function activityInterceptor(activity: ActivityTracker, draining: () => string | undefined): Interceptor {
  const passive = new Set([StatusService.typeName, RunnerAdminService.typeName]);
  return (next) => async (req) => {
    if (passive.has(req.service.typeName)) return next(req);
    const reason = draining();
    if (reason) throw unavailable(`runner is draining (${reason}): it accepts no new work`);
    activity.touch();
    if (req.method.methodKind === "unary") return next(req);
    const done = activity.streamOpened();
    try {
      const res = await next(req);
      if (!res.stream) {
        done();
        return res;
      }
      return { ...res, message: counted(res.message, done) };
    } catch (e) {
      done();
      throw e;
    }
  };
}

async function* counted<T>(it: AsyncIterable<T>, done: () => void): AsyncIterable<T> {
  try {
    yield* it;
  } finally {
    done();
  }
}
