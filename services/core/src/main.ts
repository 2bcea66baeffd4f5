/** Core's entry point: config → stores, driver, keys → createCore. The only place deps are built. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../../lib/kit/config.js";
import { createLogger, redactUrl } from "../../../lib/kit/log.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { createTokenSigner } from "../../../lib/kit/tokens.js";
import { coreConfigSchema } from "./config.js";
import { createCore } from "./core.js";
import { createRunnerProxy } from "./driver/local/proxy.js";
import { stopAllAtShutdown } from "./driver/local/shutdown.js";
import { openDriver } from "./driver/select.js";
import { loadCookieSecret, loadSigningKey } from "./secrets-files.js";
import { openBlobStore, openStateStore } from "./storage.js";
import { createWebStatic } from "./web-static.js";

const config = loadConfig(coreConfigSchema);
const log = createLogger("core", { level: config.DEVEX_LOG_LEVEL });
log.info(
  {
    state: config.REDIS_URL
      ? `redis ${redactUrl(config.REDIS_URL).replace(/\/\/[^@]*@/, "//[redacted]@")}`
      : "embedded",
    blobs: config.DEVEX_S3_BUCKET ? `s3 ${config.DEVEX_S3_BUCKET}` : "local",
    auth: config.GITHUB_CLIENT_ID ? "github" : "embedded login link",
    driver: config.DEVEX_DRIVER,
  },
  "starting core",
);
const state = await openStateStore(config);
const blobs = openBlobStore(config);
const signer = createTokenSigner(await loadSigningKey(config));
const { driver, local } = await openDriver(config, { blobs, signer, log });
const proxied = local && config.DEVEX_RUNNER_ACCESS === "proxied" ? local : undefined;
const proxy = proxied && createRunnerProxy(proxied.targetFor, "api");
const previewProxy = proxied && createRunnerProxy(proxied.targetFor, "preview");
// The browser client, when built (npm run build:web; npm start builds it).
const webDir = fileURLToPath(new URL("../../../web/dist", import.meta.url));
const web = existsSync(join(webDir, "index.html"))
  ? createWebStatic({
      dir: webDir,
      config: { github: Boolean(config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET) },
    })
  : undefined;
if (!web) log.warn({ webDir }, "web client not built: run npm run build:web to serve it");
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
  web,
  templatesDir: config.DEVEX_TEMPLATES_DIR,
  port: config.DEVEX_CORE_PORT,
  host: config.DEVEX_CORE_HOST,
  publicUrl: config.DEVEX_PUBLIC_URL,
  quota: config.DEVEX_REPL_QUOTA,
  github:
    config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET
      ? { clientId: config.GITHUB_CLIENT_ID, clientSecret: config.GITHUB_CLIENT_SECRET }
      : undefined,
  cookieSecret: await loadCookieSecret(config),
  localUser: config.DEVEX_LOCAL_USER,
  heartbeatIntervalMs: config.DEVEX_HEARTBEAT_INTERVAL,
  runnerTokenTtlSeconds: Math.round(config.DEVEX_RUNNER_TOKEN_TTL / 1000),
});
if (core.loginLink && process.send) {
  // Started by `npm start` (an IPC channel): it shows the link with the other addresses.
  process.send({ loginLink: core.loginLink });
} else if (core.loginLink) {
  // Printed on stdout on purpose (not logged): it is a one-time secret for whoever started core.
  process.stdout.write(`\n  Open this link to sign in (works once):\n\n    ${core.loginLink}\n\n`);
}
// Runners a previous core left behind: keep those a session points at, persist and stop the rest.
core
  .reconcile()
  .then((n) => n && log.info({ stopped: n }, "stopped runners left by a previous core"))
  .catch((err) => log.warn({ err }, "start-up reconciliation failed"));
// Ctrl-C, SIGTERM or the end of `npm start`: persist and stop every local runner, then exit.
onShutdown(
  log,
  [
    () => core.close(),
    async () => {
      if (local) await stopAllAtShutdown(local, state, log, AbortSignal.timeout(5 * 60_000));
    },
    () => local?.close(),
    () => state.close(),
    () => blobs.close(),
  ],
  { timeoutMs: 5 * 60_000, withParent: true, waitingFor: replsStillPersisting },
);

/** The repls whose runners are still being persisted and stopped, by name and id. */
async function replsStillPersisting(): Promise<string> {
  const runners = (await local?.list(AbortSignal.timeout(5000))) ?? [];
  if (!runners.length) return "";
  const names = await Promise.all(
    runners.map(async ({ replId }) => {
      const name = (await state.getRepl(replId).catch(() => undefined))?.name;
      return name ? `${name} (${replId})` : replId;
    }),
  );
  return `the persist of ${names.join(", ")}`;
}
