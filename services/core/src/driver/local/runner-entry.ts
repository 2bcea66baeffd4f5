/**
 * A pooled runner process. The local driver forks this ahead of time, so the cost of starting Node
 * and loading the runner's modules is paid before a repl asks for a runner. Protocol over the IPC
 * channel:
 *   child → parent  {type:"ready"}                 modules loaded, waiting
 *   parent → child  {type:"assign", env:{DEVEX_*}} the runner's configuration (services/runner/src/config.ts)
 *   child → parent  {type:"started", port} | {type:"failed", message}
 * A pooled process whose parent goes away before it is assigned exits. Once assigned it no longer
 * depends on the parent: a restarted core finds it again through its record and re-adopts it.
 */
import { createLogger, type Logger } from "../../../../../lib/kit/log.js";
import { onShutdown } from "../../../../../lib/kit/shutdown.js";
import { loadRunnerConfig } from "../../../../runner/src/config.js";
import { type Runner, startRunner } from "../../../../runner/src/runner.js";

type Message = { type: "assign"; env: Record<string, string> };

let runner: Runner | undefined;
let log: Logger = createLogger("runner", { level: "info" });

process.on("disconnect", () => {
  if (!runner) process.exit(0);
});

process.on("message", (msg: Message) => {
  if (msg?.type !== "assign" || runner) return;
  void (async () => {
    try {
      const config = loadRunnerConfig(msg.env);
      log = createLogger("runner", { level: config.logLevel });
      runner = await startRunner(config, { log });
      log.info({ replId: config.replId, workspace: config.workspace, port: runner.port }, "runner ready");
      process.send?.({ type: "started", port: runner.port });
      // From here on the runner lives on its own; the IPC channel must not keep it tied to core.
      process.channel?.unref();
    } catch (err) {
      log.error({ err }, "runner failed to start");
      process.send?.({ type: "failed", message: (err as Error).message }, () => process.exit(1));
    }
  })();
});

onShutdown(log, [() => runner?.close()], 10_000);
process.send?.({ type: "ready" });
