/**
 * Core as `npm start` runs it (services/core/src/main.ts, local driver, bubblewrap, egress through
 * pasta), but inside the test internet's H namespace, so its repls' egress path can reach only W. The
 * test reaches core and, through core's /<replId>/ proxy, the runners over core's Unix socket (a
 * file, so it crosses namespaces); core's TCP port exists only in H.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoreClients, RunnerClients } from "../client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../client/node.js";
import { sleep } from "../kit/sleep.js";
import { internetAddress, repoRoot, run, type TestInternet } from "./test-internet.js";

/** Core's TCP port inside H (nothing else listens there). */
export const corePortInH = 8080;

export interface CoreInH {
  dataDir: string;
  /** Core's clients, signed in as the API token's user. */
  core: CoreClients;
  /** A repl's runner through core's proxy (StartRepl's RunnerAccess). */
  runner(access: { url: string; token: string }): RunnerClients;
  /** Core's log so far (stdout and stderr), for failure messages. */
  log(): string;
  /** The processes below core now (runners, pasta, commands). */
  descendants(): Promise<number[]>;
  /** SIGKILL to core alone, as a crash: its runners (and their pasta) keep running, the data dir stays. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

export interface CoreInHOptions {
  /** Extra configuration (DEVEX_*), over the defaults below. */
  env?: Record<string, string>;
  user?: string;
  /** A crashed core's data dir to start from (its runners are re-adopted); default a fresh one. */
  dataDir?: string;
}

/** Starts core in H with a fresh data dir and an API token made by core's own CLI while it runs. */
export async function startCoreInH(net: TestInternet, o: CoreInHOptions = {}): Promise<CoreInH> {
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), "devex-core-in-h-")));
  const env: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    DEVEX_DATA_DIR: dataDir,
    DEVEX_CORE_PORT: String(corePortInH),
    DEVEX_COOKIE_SECRET: "test-internet-cookie-secret",
    DEVEX_SANDBOX: "bwrap",
    DEVEX_EGRESS: "pasta",
    DEVEX_EGRESS_DNS: internetAddress,
    DEVEX_REPL_QUOTA: "20",
    DEVEX_PERSIST_INTERVAL: "1h",
    DEVEX_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "info",
    ...o.env,
  };
  const user = o.user ?? "alice";
  const child = net.spawnInH(process.execPath, ["--import", "tsx", "services/core/src/main.ts"], {
    env,
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const socketPath = join(dataDir, "local", "control", "core.sock");
  let token = "";
  const core = coreClientsFor("http://localhost", { token: () => token, socketPath });
  const close = () => stopCore(child, dataDir);
  try {
    token = await createToken(env, user, child, () => output);
    await waitForCore(core, child, socketPath, () => output);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    dataDir,
    core,
    runner: (access) =>
      runnerClientsFor(`http://localhost${new URL(access.url).pathname}`, { token: access.token, socketPath }),
    log: () => output,
    descendants: () => descendantsOf(child.pid!),
    async crash() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
    close,
  };
}

/** The test's environment without settings of its own for core (a Redis, S3 or OAuth it might use). */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DEVEX_|REDIS_URL$|GITHUB_CLIENT_|AWS_)/.test(k)),
  );
}

/** An API token made by core's own CLI, through core's admin socket, as soon as core answers there. */
async function createToken(env: NodeJS.ProcessEnv, user: string, child: ChildProcess, log: () => string) {
  const adminSocket = join(env.DEVEX_DATA_DIR!, "admin", "core.sock");
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`core exited (${child.exitCode}):\n${log()}`);
    if (existsSync(adminSocket)) {
      const args = ["dist/core/cli.mjs", "create-token", "--user", user, "--name", "egress-test"];
      const made = await run(process.execPath, args, { env, cwd: repoRoot });
      if (made.code === 0) return made.stdout.trim();
      if (Date.now() > deadline) throw new Error(`create-token failed: ${made.stderr}`);
    }
    if (Date.now() > deadline) throw new Error(`core's admin socket did not appear:\n${log()}`);
    await sleep(200);
  }
}

async function waitForCore(core: CoreClients, child: ChildProcess, socketPath: string, log: () => string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`core exited (${child.exitCode}):\n${log()}`);
    if (existsSync(socketPath)) {
      const ok = await core.repls.listTemplates({}).then(
        () => true,
        () => false,
      );
      if (ok) return;
    }
    if (Date.now() > deadline) throw new Error(`core did not answer on ${socketPath}:\n${log()}`);
    await sleep(200);
  }
}

/** SIGTERM (core persists and stops its runners), then SIGKILL for anything of core's still alive. */
async function stopCore(child: ChildProcess, dataDir: string): Promise<void> {
  const family = await descendantsOf(child.pid!);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(60_000)]);
  }
  for (const pid of [child.pid!, ...family]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await rm(dataDir, { recursive: true, force: true });
}

/** Every process below `pid` now (runners in their own namespaces, pasta, commands). */
async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid) parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of parents.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Runs a shell command line in a repl through the runner's Exec API. */
export async function execInRepl(
  runner: RunnerClients,
  shell: string,
  timeoutSeconds = 60,
): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  let stdout = "";
  let stderr = "";
  let exitCode: number | undefined;
  const timeout = { seconds: BigInt(timeoutSeconds), nanos: 0 };
  for await (const r of runner.processes.exec({ command: { shell }, timeout })) {
    if (r.event.case === "stdout") stdout += Buffer.from(r.event.value).toString();
    if (r.event.case === "stderr") stderr += Buffer.from(r.event.value).toString();
    if (r.event.case === "exit") exitCode = r.event.value.exitCode;
  }
  return { stdout, stderr, exitCode };
}
