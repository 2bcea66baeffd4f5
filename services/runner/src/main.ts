/**
 * The runner's one entry point: `node dist/runner/main.mjs`, configured from the
 * environment (see config.ts and services/runner/README.md).
 */
import { configOrExit } from "../../../lib/kit/config.js";
import { createLogger } from "../../../lib/kit/log.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { loadRunnerConfig } from "./config.js";
import { startRunner } from "./runner.js";

const config = configOrExit(loadRunnerConfig);
const log = createLogger("runner", { level: config.logLevel });
// No top-level await: the runner's bundle is CommonJS, run from V8's code cache (scripts/build.mjs).
startRunner(config, { log }).then(
  (runner) => {
    log.info({ replId: config.replId, workspace: runner.workspace.root, core: config.core?.url }, "runner ready");
    onShutdown(log, [() => runner.close()]);
  },
  (err) => {
    log.fatal({ err }, "runner failed to start");
    process.exit(1);
  },
);
