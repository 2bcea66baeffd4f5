/**
 * Runner configuration, from the environment:
 *
 *   DEVEX_RUNNER_WORKSPACE          Directory served as the repl's workspace (required; created if missing).
 *   DEVEX_RUNNER_HOME               The repl's home: user commands get it as HOME, and an empty one is seeded from
 *                                   /etc/skel (the drivers set it; unset, commands keep the runner's HOME).
 *   DEVEX_RUNNER_PORT               Port for gRPC (h2c), Connect, WebSocket and preview (default 8090; 0 picks one).
 *   DEVEX_RUNNER_HOST               Interface to bind (default 127.0.0.1).
 *   DEVEX_RUNNER_SOCKET             Listen on this Unix domain socket instead of TCP (the local driver's runners in
 *                                   their private network namespace; port and host are then ignored).
 *   DEVEX_REPL_ID                   The repl this runner serves; tokens for other repls are refused (required).
 *   DEVEX_TOKEN_PUBLIC_KEY          Ed25519 public key (PEM) that verifies access tokens, or
 *   DEVEX_TOKEN_PUBLIC_KEY_FILE     a file holding it (one of the two is required).
 *   DEVEX_CORE_URL                  Core's base URL; with DEVEX_RUNNER_ID and DEVEX_RUNNER_CONTROL_TOKEN the runner
 *   DEVEX_RUNNER_ID                 sends heartbeats and idle reports to core's RunnerControlService.
 *   DEVEX_RUNNER_CONTROL_TOKEN      The runner's credential for core (aud "runner-control"); never logged.
 *   DEVEX_CORE_SOCKET               Reach DEVEX_CORE_URL through this Unix domain socket (the local driver's runners,
 *                                   whose network namespace has no route to core's TCP port).
 *   DEVEX_IDLE_TIMEOUT              Idle time before the runner reports itself idle (default 4m).
 *   DEVEX_HEARTBEAT_INTERVAL        Heartbeat period until core says otherwise (default 30s).
 *   DEVEX_TRUST_PROXY               A proxy in front appends the client's address to X-Forwarded-For (an ingress):
 *                                   audit events name that address (default false; on its Unix socket the runner
 *                                   always takes it from core's proxy).
 *   DEVEX_RUNNER_MAX_FILE_READ      Largest ReadFile answer in bytes (default 16 MiB).
 *   DEVEX_RUNNER_MAX_TERMINALS      Terminals running at once (default 16).
 *   DEVEX_RUNNER_MAX_PROCESSES      Exec calls and background processes running at once (default 32).
 *   DEVEX_RUNNER_SCROLLBACK_BYTES   Scrollback kept per terminal (default 1 MiB).
 *   DEVEX_RUNNER_PROCESS_OUTPUT_BYTES  Output kept per background process (default 1 MiB).
 *   DEVEX_RUNNER_MAX_MESSAGE_BYTES  Largest request message (default 16 MiB).
 *   DEVEX_RUNNER_MAX_UPLOAD         Largest file an upload writes, and largest total of an uploaded archive's files
 *                                   (default 64 GiB; the disk and the sandbox's file-size limit apply as well).
 *   DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES  Most entries a directory archive holds, either way (default 200,000).
 *   DEVEX_LOG_LEVEL                 pino level (default info).
 *   DEVEX_RUNNER_COMMAND_PREFIX     JSON array of argv put before every user command (terminals, Exec, background
 *                                   processes), e.g. a sandbox: ["prlimit","--nproc=256","--","bwrap",…,"--"].
 *                                   Set by core's local driver; unset runs commands directly.
 */
import { readFileSync } from "node:fs";
import { ConfigError, env, loadConfig } from "../../../lib/kit/config.js";
import * as z from "../../../lib/kit/zod.js";

const bytes = (fallback: number) => z._default(env.integer(z.minimum(1)), fallback);
const count = (fallback: number) => z._default(env.integer(z.minimum(1), z.maximum(10_000)), fallback);
const text = () => z.string().check(z.minLength(1));

export const configSchema = z.object({
  DEVEX_RUNNER_WORKSPACE: text(),
  DEVEX_RUNNER_HOME: z.optional(text()),
  DEVEX_RUNNER_PORT: env.port(8090),
  DEVEX_RUNNER_HOST: z._default(z.string(), "127.0.0.1"),
  DEVEX_RUNNER_SOCKET: z.optional(text()),
  DEVEX_REPL_ID: z.string().check(z.regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be a repl id such as my-repl-1")),
  DEVEX_TOKEN_PUBLIC_KEY: z.optional(z.string()),
  DEVEX_TOKEN_PUBLIC_KEY_FILE: z.optional(z.string()),
  DEVEX_CORE_URL: z.optional(env.url()),
  DEVEX_RUNNER_ID: z.optional(z.string()),
  DEVEX_RUNNER_CONTROL_TOKEN: z.optional(z.string()),
  DEVEX_CORE_SOCKET: z.optional(text()),
  DEVEX_IDLE_TIMEOUT: env.duration("4m"),
  DEVEX_HEARTBEAT_INTERVAL: env.duration("30s"),
  DEVEX_TRUST_PROXY: env.bool(false),
  DEVEX_RUNNER_MAX_FILE_READ: bytes(16 * 1024 * 1024),
  DEVEX_RUNNER_MAX_TERMINALS: count(16),
  DEVEX_RUNNER_MAX_PROCESSES: count(32),
  DEVEX_RUNNER_SCROLLBACK_BYTES: bytes(1024 * 1024),
  DEVEX_RUNNER_PROCESS_OUTPUT_BYTES: bytes(1024 * 1024),
  DEVEX_RUNNER_MAX_MESSAGE_BYTES: bytes(16 * 1024 * 1024),
  DEVEX_RUNNER_MAX_UPLOAD: bytes(64 * 1024 ** 3),
  DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES: z._default(env.integer(z.minimum(1), z.maximum(10_000_000)), 200_000),
  DEVEX_LOG_LEVEL: env.logLevel(),
  DEVEX_RUNNER_COMMAND_PREFIX: z.pipe(
    z.optional(z.string()),
    z.transform((v: string | undefined, ctx) => {
      if (!v) return [];
      try {
        const argv = JSON.parse(v) as unknown;
        if (Array.isArray(argv) && argv.every((a) => typeof a === "string")) return argv as string[];
      } catch {}
      ctx.issues.push({ code: "custom", message: "must be a JSON array of strings", input: v });
      return z.NEVER;
    }),
  ),
});

export interface Limits {
  maxFileRead: number;
  maxTerminals: number;
  maxProcesses: number;
  scrollbackBytes: number;
  processOutputBytes: number;
  maxMessageBytes: number;
  /** Largest file an upload writes (UploadFile, the transfer route), and largest total of an archive's files. */
  maxUploadBytes: number;
  /** Most entries an archive may hold, uploaded or downloaded. */
  maxArchiveEntries: number;
}

export interface CoreLink {
  url: string;
  /** Connect to core through this Unix socket instead of the URL's host and port. */
  socketPath?: string;
  runnerId: string;
  controlToken: string;
  heartbeatIntervalMs: number;
}

export interface RunnerConfig {
  workspace: string;
  /** The repl's home (HOME of user commands), outside the workspace. */
  home?: string;
  port: number;
  host: string;
  /** Listen on this Unix socket instead of TCP host:port. */
  socketPath?: string;
  replId: string;
  tokenPublicKeyPem: string;
  idleTimeoutMs: number;
  core?: CoreLink;
  limits: Limits;
  logLevel: string;
  /** Put before every user command (a sandbox such as bubblewrap); empty runs commands directly. */
  commandPrefix?: string[];
  /** X-Forwarded-For's last address is the client's (DEVEX_TRUST_PROXY). */
  trustProxy?: boolean;
}

export const defaultRunnerLimits: Limits = {
  maxFileRead: 16 * 1024 * 1024,
  maxTerminals: 16,
  maxProcesses: 32,
  scrollbackBytes: 1024 * 1024,
  processOutputBytes: 1024 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxUploadBytes: 64 * 1024 ** 3,
  maxArchiveEntries: 200_000,
};

export function loadRunnerConfig(source: NodeJS.ProcessEnv = process.env): RunnerConfig {
  const c = loadConfig(configSchema, source);
  const pem = c.DEVEX_TOKEN_PUBLIC_KEY ?? readKeyFile(c.DEVEX_TOKEN_PUBLIC_KEY_FILE);
  if (!pem) throw new ConfigError(["set DEVEX_TOKEN_PUBLIC_KEY or DEVEX_TOKEN_PUBLIC_KEY_FILE"]);
  const coreParts = [c.DEVEX_CORE_URL, c.DEVEX_RUNNER_ID, c.DEVEX_RUNNER_CONTROL_TOKEN];
  if (coreParts.some(Boolean) && !coreParts.every(Boolean)) {
    throw new ConfigError([
      "DEVEX_CORE_URL, DEVEX_RUNNER_ID and DEVEX_RUNNER_CONTROL_TOKEN go together: set all three or none",
    ]);
  }
  return {
    workspace: c.DEVEX_RUNNER_WORKSPACE,
    home: c.DEVEX_RUNNER_HOME,
    port: c.DEVEX_RUNNER_PORT,
    host: c.DEVEX_RUNNER_HOST,
    socketPath: c.DEVEX_RUNNER_SOCKET,
    replId: c.DEVEX_REPL_ID,
    tokenPublicKeyPem: pem,
    idleTimeoutMs: c.DEVEX_IDLE_TIMEOUT,
    core: c.DEVEX_CORE_URL
      ? {
          url: c.DEVEX_CORE_URL,
          socketPath: c.DEVEX_CORE_SOCKET,
          runnerId: c.DEVEX_RUNNER_ID!,
          controlToken: c.DEVEX_RUNNER_CONTROL_TOKEN!,
          heartbeatIntervalMs: c.DEVEX_HEARTBEAT_INTERVAL,
        }
      : undefined,
    limits: {
      maxFileRead: c.DEVEX_RUNNER_MAX_FILE_READ,
      maxTerminals: c.DEVEX_RUNNER_MAX_TERMINALS,
      maxProcesses: c.DEVEX_RUNNER_MAX_PROCESSES,
      scrollbackBytes: c.DEVEX_RUNNER_SCROLLBACK_BYTES,
      processOutputBytes: c.DEVEX_RUNNER_PROCESS_OUTPUT_BYTES,
      maxMessageBytes: c.DEVEX_RUNNER_MAX_MESSAGE_BYTES,
      maxUploadBytes: c.DEVEX_RUNNER_MAX_UPLOAD,
      maxArchiveEntries: c.DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES,
    },
    logLevel: c.DEVEX_LOG_LEVEL,
    commandPrefix: c.DEVEX_RUNNER_COMMAND_PREFIX,
    trustProxy: c.DEVEX_TRUST_PROXY,
  };
}

function readKeyFile(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([
      `DEVEX_TOKEN_PUBLIC_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`,
    ]);
  }
}

/** "16 MiB", "512 KiB", "12 bytes": sizes in error messages. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
