/**
 * The embedded single-machine setup in-process, built by start-core.ts as main.ts builds it: core
 * with the local driver (real runner processes, the bwrap sandbox when installed) behind one origin
 * (the /<replId>/ proxy), embedded state and a real blob store, over a scratch data dir. Tests talk
 * to it only through the shared clients.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../../../lib/blob/store.js";
import type { CoreClients, RunnerClients } from "../../../lib/client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../../../lib/client/node.js";
import { createLogger } from "../../../lib/kit/log.js";
import type { HttpHandler } from "../../../lib/kit/server.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { coreConfigSchema } from "../src/config.js";
import type { Core } from "../src/core.js";
import { createLocalDriver, type LocalDriver } from "../src/driver/local/local-driver.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";
import { startCore } from "../src/start-core.js";
import type { StateStore } from "../src/state/store.js";

export interface Embedded {
  core: Core;
  driver: LocalDriver;
  state: StateStore;
  blobs: BlobStore;
  dir: string;
  /** Which isolation the sandbox provides (Sandbox.description). */
  isolation: string;
  /** Signs in: an API token for the user, as `core create-token` makes. */
  login(userId?: string): Promise<CoreClients>;
  runner(access: { url: string; token: string }): RunnerClients;
  close(): Promise<void>;
}

export interface EmbeddedOptions {
  blobs?: BlobStore;
  heartbeatIntervalMs?: number;
  persistIntervalMs?: number;
  syncAttempts?: number;
  poolSize?: number;
  /** Runner idle timeout (runners report idle after it and core stops them). */
  idleTimeoutMs?: number;
  /** Core's `web` hook: the browser client's static files (web/test). */
  web?: HttpHandler;
  /** Sandboxed commands share the host network (DEVEX_SANDBOX_NETWORK), so the preview proxy reaches them. */
  sandboxNetwork?: boolean;
  /** Repls per user (core's default is 2). */
  quota?: number;
  /** The operator's template folders (DEVEX_TEMPLATES_DIR); defaults to the repo's templates/. */
  templatesDir?: string;
  /** More of core's configuration, as environment variables (DEVEX_GIT_MAX_SIZE). */
  config?: Record<string, string>;
  /** Core's log level; defaults to TEST_LOG_LEVEL or silent. */
  logLevel?: string;
  /** Collects core's log lines (JSON, at logLevel or debug) instead of printing them. */
  logLines?: string[];
}

export async function startEmbedded(o: EmbeddedOptions = {}): Promise<Embedded> {
  const dir = await mkdtemp(join(tmpdir(), "devex-embedded-"));
  const config = coreConfigSchema.parse({
    DEVEX_DATA_DIR: dir,
    DEVEX_CORE_PORT: "0",
    DEVEX_COOKIE_SECRET: "test-cookie-secret",
    DEVEX_HEARTBEAT_INTERVAL: o.heartbeatIntervalMs?.toString(),
    DEVEX_REPL_QUOTA: o.quota?.toString(),
    DEVEX_TEMPLATES_DIR: o.templatesDir,
    ...o.config,
  });
  // The local driver as select.ts builds it, tuned: no periodic persist, fewer sync attempts.
  const sandbox = createSandbox({ mode: "auto", limits: defaultSandboxLimits, network: o.sandboxNetwork });
  const started = await startCore(config, {
    log: o.logLines
      ? createLogger("core", {
          level: o.logLevel ?? "debug",
          destination: { write: (l: string) => o.logLines!.push(l) },
        })
      : createLogger("core", { level: o.logLevel ?? process.env.TEST_LOG_LEVEL ?? "silent" }),
    blobs: o.blobs,
    web: o.web,
    reconcileIntervalMs: 0,
    async openDriver(deps) {
      const local = await createLocalDriver({
        ...deps,
        dataDir: join(dir, "local"),
        sandbox,
        poolSize: o.poolSize ?? 2,
        persistIntervalMs: o.persistIntervalMs ?? 0,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        idleTimeoutMs: o.idleTimeoutMs,
        syncAttempts: o.syncAttempts ?? 2,
        access: "proxied",
      });
      return { driver: local, local };
    },
  });
  const { core, state, blobs } = started;
  return {
    core,
    driver: started.local!,
    state,
    blobs,
    dir,
    isolation: sandbox.description,
    async login(userId = "alice") {
      const { secret } = await issueApiToken(state, userId, "test");
      return coreClientsFor(core.url, { token: secret });
    },
    runner: (access) => runnerClientsFor(access.url, { token: access.token }),
    async close() {
      await started.close(AbortSignal.timeout(30_000));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A repl's runner as the local driver recorded it: its host pid and its slot's workspace on the host. */
export async function runnerRecordOf(e: Embedded, replId: string): Promise<{ pid: number; workspace: string }> {
  const runners = join(e.dir, "local", "runners");
  for (const proc of await readdir(runners)) {
    const record = await readFile(join(runners, proc, "record.json"), "utf8").then(JSON.parse, () => undefined);
    if (record?.replId === replId) return record;
  }
  throw new Error(`no runner record for ${replId}`);
}

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, "g");

/** Runs a bash command line through the runner's Exec: its stdout and stderr together, and its exit code. */
export async function exec(runner: RunnerClients, shell: string): Promise<{ out: string; code: number }> {
  let out = "";
  let code = -1;
  for await (const m of runner.processes.exec({ command: { shell } })) {
    if (m.event.case === "stdout" || m.event.case === "stderr") out += Buffer.from(m.event.value).toString();
    if (m.event.case === "exit") code = m.event.value.exitCode;
  }
  return { out, code };
}

/** Runs a command line in a terminal and returns its output and exit status (the shell stays open). */
export async function runInTerminal(
  runner: RunnerClients,
  terminalId: string,
  command: string,
  timeoutMs = 15_000,
): Promise<{ output: string; status: number }> {
  const marker = `__done_${Math.random().toString(36).slice(2)}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let text = "";
  const stream = runner.terminals.streamOutput({ terminalId, replay: true }, { signal: abort.signal });
  const done = (async () => {
    for await (const m of stream) {
      if (m.frame.case === "output") text += Buffer.from(m.frame.value).toString("utf8").replace(ansi, "");
      const found = new RegExp(`${marker}=(\\d+)\\r?\\n`).exec(text);
      if (found) return { status: Number(found[1]), end: found.index };
    }
    throw new Error(`terminal ended before the command finished; output: ${text}`);
  })();
  // The marker is split in the echoed input, so only the real output matches.
  await runner.terminals.sendInput({
    terminalId,
    data: Buffer.from(`${command}; echo "${marker.slice(0, 3)}""${marker.slice(3)}=$?"\n`),
  });
  try {
    const { status, end } = await done;
    // Output: after the echoed command line, up to the marker.
    const echoed = text.lastIndexOf(`${marker.slice(3)}=$?"`, end);
    const start = echoed >= 0 ? text.indexOf("\n", echoed) + 1 : 0;
    return { output: text.slice(start, end), status };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
