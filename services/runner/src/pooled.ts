/**
 * A pooled runner process. Core's local driver forks this ahead of time (its warm pool), so the cost
 * of starting Node and loading the runner's modules is paid before a repl asks for a runner. It
 * speaks lib/contracts/pooled-runner.ts over the IPC channel: "ready" once warm, then one "assign"
 * with the runner's configuration, answered with "started" or "failed".
 * A pooled process whose parent goes away before it is assigned exits. Once assigned it no longer
 * depends on the parent: a restarted core finds it again through its record and re-adopts it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { type PoolToRunner, pooledRunnerScratch, type RunnerToPool } from "../../../lib/contracts/pooled-runner.js";
import { Audience, RunnerScope } from "../../../lib/contracts/runner-access.js";
import { createLogger, type Logger } from "../../../lib/kit/log.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { defaultRunnerLimits, loadRunnerConfig } from "./config.js";
import { type Runner, startRunner } from "./runner.js";

let runner: Runner | undefined;
let log: Logger = createLogger("runner", { level: "info" });

const orphaned = () => {
  if (!runner) process.exit(0);
};
process.on("disconnect", orphaned);
// Core may have died while this process was still loading modules: the event is gone by now.
if (!process.connected) orphaned();

/** A message to the pool; `then` runs once it is sent. */
const tell = (msg: RunnerToPool, then: () => void = () => {}) => process.send?.(msg, then);

process.on("message", (msg: PoolToRunner) => {
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
      tell({ type: "started", port: runner.port });
      // From here on the runner lives on its own; the IPC channel must not keep it tied to core.
      process.channel?.unref();
    } catch (err) {
      log.error({ err }, "runner failed to start");
      tell({ type: "failed", message: (err as Error).message }, () => process.exit(1));
    }
  })();
});

/**
 * Runs one throwaway runner through the calls a fresh repl makes first (write and read a file, open a
 * terminal and read its first byte), so lazy module loading, the PTY native module and the JIT are
 * paid here, before the process is handed a repl. Halves the first terminal's latency.
 */
async function warmUp(): Promise<void> {
  // In a folder that goes away with this process (its private /tmp, or its folder the pool removes).
  const dir = await mkdtemp(join(pooledRunnerScratch(process.argv) ?? tmpdir(), "warmup-"));
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
      limits: defaultRunnerLimits,
      logLevel: "silent",
    },
    { log: createLogger("runner", { level: "silent" }) },
  );
  try {
    const token = createTokenSigner(key.privateKeyPem).mint(
      { aud: Audience.runner, sub: "warmup", repl: replId, scope: [RunnerScope.files, RunnerScope.terminals] },
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
// No top-level await: the runner's bundle is CommonJS, run from V8's code cache (scripts/build.mjs).
void warmUp()
  .catch((err) => log.warn({ err }, "runner warm-up failed (the first requests will be slower)"))
  .then(() => {
    if (!process.connected) orphaned();
    tell({ type: "ready" });
  });
