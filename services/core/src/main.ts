/** Core's entry point: the config, core built from it (start-core.ts), and the process around it. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { configOrExit, loadConfig } from "../../../lib/kit/config.js";
import { createLogger, redactUrl } from "../../../lib/kit/log.js";
import { projectRoot } from "../../../lib/kit/project-root.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { coreConfigSchema } from "./config.js";
import { startCore } from "./start-core.js";
import { createWebStatic } from "./web-static.js";

const config = configOrExit(() => loadConfig(coreConfigSchema));
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
// The browser client, when built (npm run build:web; npm start builds it).
const webDir = join(projectRoot, "web/dist");
const web = existsSync(join(webDir, "index.html"))
  ? createWebStatic({
      dir: webDir,
      config: { github: Boolean(config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET) },
    })
  : undefined;
if (!web) log.warn({ webDir }, "web client not built: run npm run build:web to serve it");
const { core, state, local, close } = await startCore(config, { log, web });
if (core.loginLink && process.send) {
  // Started by `npm start` (an IPC channel): it shows the link with the other addresses.
  process.send({ loginLink: core.loginLink });
} else if (core.loginLink) {
  // Printed on stdout on purpose (not logged): it is a one-time secret for whoever started core.
  const another = `${config.DEVEX_DATA_DIR === ".data" ? "" : `DEVEX_DATA_DIR=${config.DEVEX_DATA_DIR} `}node dist/core/cli.mjs login-link`;
  process.stdout.write(
    `\n  Open this link to sign in (works once, for a day):\n\n    ${core.loginLink}\n\n  Another one: ${another}\n\n`,
  );
}
// Runners a previous core left behind: keep those a session points at, persist and stop the rest.
core
  .reconcile()
  .then((n) => n && log.info({ stopped: n }, "stopped runners left by a previous core"))
  .catch((err) => log.warn({ err }, "start-up reconciliation failed"));
// Ctrl-C, SIGTERM or the end of `npm start`: persist and stop every local runner, then exit.
onShutdown(log, [() => close(AbortSignal.timeout(5 * 60_000))], {
  timeoutMs: 5 * 60_000,
  withParent: true,
  waitingFor: replsStillPersisting,
});

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
