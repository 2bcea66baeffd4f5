/**
 * Core and everything it runs on, built from its config: the state and blob stores, the signing key
 * and cookie secret, the driver and, for the local driver with proxied access, the `/<replId>/` and
 * preview proxies to its runners. The one composition root: main.ts runs it as the service; the
 * end-to-end tests (test/embedded.ts) and the benches start it in-process over a scratch data dir.
 */
import type { BlobStore } from "../../../lib/blob/store.js";
import type { Logger } from "../../../lib/kit/log.js";
import type { HttpHandler } from "../../../lib/kit/server.js";
import { createTokenSigner, type TokenSigner } from "../../../lib/kit/tokens.js";
import { adminSocketPath } from "./admin/admin-socket.js";
import { auditRetention } from "./audit/retention.js";
import { type CoreConfig, egressDefault } from "./config.js";
import { type Core, createCore } from "./core.js";
import type { Driver } from "./driver/driver.js";
import type { LocalDriver } from "./driver/local/local-driver.js";
import { createRunnerProxy } from "./driver/local/proxy.js";
import { stopAllAtShutdown } from "./driver/local/shutdown.js";
import { egressRangesForDriver, openDriver } from "./driver/select.js";
import { loadCookieSecret, loadSecretsKey, loadSigningKey } from "./secrets-files.js";
import type { StateStore } from "./state/store.js";
import { openBlobStore, openStateStore } from "./storage.js";

/** What the caller brings beside the config. */
export interface StartCoreDeps {
  log: Logger;
  /** A blob store to use instead of the configured one; close() leaves it open. */
  blobs?: BlobStore;
  /** The browser client's static files (core's `web` hook). */
  web?: HttpHandler;
  /** Builds the driver instead of the config's choice (select.ts): tests tune the local driver. */
  openDriver?: (deps: { blobs: BlobStore; signer: TokenSigner; log: Logger }) => Promise<OpenedDriver>;
  /** How often orphaned runners are looked for; 0 turns it off (core's default: 60 s). */
  reconcileIntervalMs?: number;
}

export interface OpenedDriver {
  driver: Driver;
  /** The same driver when it is the local one. */
  local?: LocalDriver;
}

export interface StartedCore extends OpenedDriver {
  core: Core;
  state: StateStore;
  blobs: BlobStore;
  /**
   * Stops core, persists and stops every local runner (their repls recorded as stopped, as on Ctrl-C),
   * closes the driver and the stores. Each step runs even when one before it failed; the failures are
   * thrown together at the end.
   */
  close(signal: AbortSignal): Promise<void>;
}

export async function startCore(config: CoreConfig, deps: StartCoreDeps): Promise<StartedCore> {
  const { log } = deps;
  // First, so a bad DEVEX_EGRESS_DENY_CIDRS fails the start before anything is opened.
  const egressRanges = egressRangesForDriver(config);
  const state = await openStateStore(config);
  const blobs = deps.blobs ?? openBlobStore(config);
  const signer = createTokenSigner(await loadSigningKey(config));
  const { driver, local } = await (deps.openDriver?.({ blobs, signer, log }) ??
    openDriver(config, { blobs, signer, log, egressRanges }));
  const proxied = local && config.DEVEX_RUNNER_ACCESS === "proxied" ? local : undefined;
  const proxy = proxied && createRunnerProxy(proxied.targetFor, "api", config.DEVEX_TRUST_PROXY);
  const previewProxy = proxied && createRunnerProxy(proxied.targetFor, "preview", config.DEVEX_TRUST_PROXY);
  const core = await createCore({
    log,
    state,
    blobs,
    driver,
    signer,
    http: proxy?.http,
    upgrade: proxy?.upgrade,
    preview: previewProxy && {
      ...previewProxy,
      port: config.DEVEX_PREVIEW_PORT ?? (config.DEVEX_CORE_PORT ? config.DEVEX_CORE_PORT + 1 : 0),
      publicUrl: config.DEVEX_PREVIEW_PUBLIC_URL,
    },
    socketPath: local?.coreSocketPath,
    adminSocketPath: adminSocketPath(config.DEVEX_DATA_DIR),
    web: deps.web,
    templatesDir: config.DEVEX_TEMPLATES_DIR,
    port: config.DEVEX_CORE_PORT,
    host: config.DEVEX_CORE_HOST,
    publicUrl: config.DEVEX_PUBLIC_URL,
    quota: config.DEVEX_REPL_QUOTA,
    templateQuota: config.DEVEX_TEMPLATE_QUOTA,
    checkpoints: {
      maxCount: config.DEVEX_CHECKPOINT_MAX_COUNT,
      maxAgeMs: config.DEVEX_CHECKPOINT_MAX_AGE_DAYS * 86_400_000,
      onStop: config.DEVEX_CHECKPOINT_ON_STOP,
    },
    git: {
      maxBytes: config.DEVEX_GIT_MAX_SIZE,
      timeoutMs: config.DEVEX_GIT_CLONE_TIMEOUT,
      allowHttp: config.DEVEX_GIT_ALLOW_HTTP,
    },
    egressDefault: egressDefault(config),
    egressRanges,
    github:
      config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET
        ? {
            clientId: config.GITHUB_CLIENT_ID,
            clientSecret: config.GITHUB_CLIENT_SECRET,
            repositories: config.DEVEX_GITHUB_REPOSITORIES,
            ...githubEndpoints(config.DEVEX_GITHUB_URL, config.DEVEX_GITHUB_API_URL),
          }
        : undefined,
    cookieSecret: await loadCookieSecret(config),
    secretsKey: await loadSecretsKey(config),
    localUser: config.DEVEX_LOCAL_USER,
    heartbeatIntervalMs: config.DEVEX_HEARTBEAT_INTERVAL,
    runnerTokenTtlSeconds: Math.round(config.DEVEX_RUNNER_TOKEN_TTL / 1000),
    reconcileIntervalMs: deps.reconcileIntervalMs,
    trustProxy: config.DEVEX_TRUST_PROXY,
    auditRetention: auditRetention({
      maxAgeMs: config.DEVEX_AUDIT_RETENTION,
      maxEvents: config.DEVEX_AUDIT_MAX_EVENTS,
      maxUserEvents: config.DEVEX_AUDIT_MAX_USER_EVENTS,
      embedded: !config.REDIS_URL,
    }),
  });
  const steps = [
    () => core.close(),
    () => {
      proxy?.close();
      previewProxy?.close();
    },
    async (signal: AbortSignal) => {
      if (local) await stopAllAtShutdown(local, state, log, signal);
    },
    () => local?.close(),
    () => state.close(),
    async () => {
      if (!deps.blobs) await blobs.close();
    },
  ];
  return {
    core,
    state,
    blobs,
    driver,
    local,
    async close(signal) {
      const failures: unknown[] = [];
      for (const step of steps) {
        try {
          await step(signal);
        } catch (err) {
          failures.push(err);
        }
      }
      if (failures.length) throw new AggregateError(failures, "shutting core down failed");
    },
  };
}

/** github.com's, or a GitHub Enterprise Server's (its API at <url>/api/v3 unless named). */
function githubEndpoints(web: string, api: string | undefined) {
  const url = web.replace(/\/+$/, "");
  const apiUrl = (api ?? (url === "https://github.com" ? "https://api.github.com" : `${url}/api/v3`)).replace(
    /\/+$/,
    "",
  );
  return {
    authorizeUrl: `${url}/login/oauth/authorize`,
    accessUrl: `${url}/login/oauth/access_token`,
    profileUrl: `${apiUrl}/user`,
    hosts: { gitUrl: url, apiUrl },
  };
}
