/**
 * The runner's one entry point: `node dist/runner/main.mjs`, configured from the
 * environment (see config.ts and services/runner/README.md).
 */
import { createLogger } from "../../../lib/kit/log.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { loadRunnerConfig } from "./config.js";
import { startRunner } from "./runner.js";

let config: ReturnType<typeof loadRunnerConfig>;
try {
  config = loadRunnerConfig();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const log = createLogger("runner", { level: config.logLevel });
const runner = await startRunner(config, { log });
log.info({ replId: config.replId, workspace: runner.workspace.root, core: config.core?.url }, "runner ready");
onShutdown(log, [() => runner.close()]);
