/**
 * A pooled runner process. The local driver forks this ahead of time, so the cost of starting Node
 * and loading the runner's modules is paid before a repl asks for a runner. Protocol over the IPC
 * channel:
 *   child → parent  {type:"ready"}                 modules loaded, waiting
 *   parent → child  {type:"assign", env:{DEVEX_*}} the runner's configuration (services/runner/src/config.ts)
 *   child → parent  {type:"started", port} | {type:"failed", message}
 * A pooled process whose parent goes away before it is assigned exits. Once assigned it no longer
 * depends on the parent: a restarted core finds it again through its record and re-adopts it.
 * Arguments: the process marker, the process id and a scratch folder for the warm-up (its private
 * /tmp in the sandbox, else its own `<runnersDir>/<procId>`, which the pool removes when it kills an
 * unassigned process).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runnerClientsFor } from "../../../../../lib/client/node.js";
import { createLogger, type Logger } from "../../../../../lib/kit/log.js";
import { onShutdown } from "../../../../../lib/kit/shutdown.js";
import { createTokenSigner, generateSigningKey } from "../../../../../lib/kit/tokens.js";
import { defaultLimits, loadRunnerConfig } from "../../../../runner/src/config.js";
import { type Runner, startRunner } from "../../../../runner/src/runner.js";

type Message = { type: "assign"; env: Record<string, string> };

let runner: Runner | undefined;
let log: Logger = createLogger("runner", { level: "info" });

const orphaned = () => {
  if (!runner) process.exit(0);
};
process.on("disconnect", orphaned);
// Core may have died while this process was still loading modules: the event is gone by now.
if (!process.connected) orphaned();

process.on("message", (msg: Message) => {
  if (msg?.type !== "assign" || runner) return;
  void (async () => {
    try {
      const config = loadRunnerConfig(msg.env);
      log = createLogger("runner", { level: config.logLevel });
      runner = await startRunner(config, { log });
      log.info(
        { replId: config.replId, workspace: config.workspace, port: runner.port, socketPath: config.socketPath },
        "runner ready",
      );
      process.send?.({ type: "started", port: runner.port });
      // From here on the runner lives on its own; the IPC channel must not keep it tied to core.
      process.channel?.unref();
    } catch (err) {
      log.error({ err }, "runner failed to start");
      process.send?.({ type: "failed", message: (err as Error).message }, () => process.exit(1));
    }
  })();
});

/**
 * Runs one throwaway runner through the calls a fresh repl makes first (write and read a file, open a
 * terminal and read its first byte), so lazy module loading, the PTY native module and the JIT are
 * paid here, before the process is handed a repl. Halves the first terminal's latency.
 */
async function warmUp(): Promise<void> {
  // In a folder that goes away with this process (see the arguments above).
  const dir = await mkdtemp(join(process.argv[4] ?? tmpdir(), "warmup-"));
  const key = generateSigningKey();
  const replId = "warmup";
  const warm = await startRunner(
    {
      workspace: dir,
      port: 0,
      host: "127.0.0.1",
      replId,
      tokenPublicKeyPem: key.publicKeyPem,
      idleTimeoutMs: 3_600_000,
      limits: defaultLimits,
      logLevel: "silent",
    },
    { log: createLogger("runner", { level: "silent" }) },
  );
  try {
    const token = createTokenSigner(key.privateKeyPem).mint(
      { aud: "runner", sub: "warmup", repl: replId, scope: ["files", "terminals"] },
      60,
    );
    const c = runnerClientsFor(warm.url, { token });
    await c.files.writeFile({ path: "warm.txt", content: Buffer.from("warm") });
    await c.files.readFile({ path: "warm.txt" });
    const { terminal } = await c.terminals.createTerminal({ command: ["echo", "warm"] });
    const abort = new AbortController();
    for await (const m of c.terminals.streamOutput(
      { terminalId: terminal!.terminalId, replay: true },
      { signal: abort.signal },
    )) {
      if (m.frame.case === "output") break;
    }
    abort.abort();
  } finally {
    await warm.close();
    await rm(dir, { recursive: true, force: true });
  }
}

onShutdown(log, [() => runner?.close()], 10_000);
await warmUp().catch((err) => log.warn({ err }, "runner warm-up failed (the first requests will be slower)"));
if (!process.connected) orphaned();
process.send?.({ type: "ready" });
