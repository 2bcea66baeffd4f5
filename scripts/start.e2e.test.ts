/**
 * `npm start` (scripts/start.ts, run from its bundle dist/start/main.mjs): the embedded system comes up
 * from the built services (no TypeScript loader in any of its processes), prints where to go, and however it is
 * stopped — Ctrl-C typed into its terminal, one SIGTERM, or the start script SIGKILLed — every running
 * repl is persisted once and no process of its data directory (start script, core, MCP server, runner,
 * repl command) is left.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn as spawnPty } from "@lydell/node-pty";
import { createLocalBlobStore } from "../lib/blob/local.js";
import { coreClientsFor, runnerClientsFor } from "../lib/client/node.js";
import { isAlive } from "../lib/kit/pids.js";
import { readStoredWorkspace } from "../lib/sync/sync.js";
import { freePorts } from "../lib/testing/ports.js";
import { issueApiToken } from "../services/core/src/auth/secrets.js";
import { createEmbeddedStore } from "../services/core/src/state/embedded.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const startScript = join(root, "dist", "start", "main.mjs");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number, output = () => "") {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
    await sleep(100);
  }
}

/** Pids of every process whose command line or environment names `dir` (core, MCP, runners, repl commands). */
async function processesOf(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const texts = await Promise.all(
      ["cmdline", "environ"].map((f) => readFile(`/proc/${pid}/${f}`, "latin1").catch(() => "")),
    );
    if (texts.some((t) => t.includes(dir))) found.push(pid);
  }
  return found;
}

/** The pid of the repl's runner, from its record under `<data>/local/runners/`. */
async function runnerPidOf(dataDir: string, replId: string): Promise<number | undefined> {
  const dir = join(dataDir, "local", "runners");
  for (const d of await readdir(dir).catch(() => [] as string[])) {
    const record = await readFile(join(dir, d, "record.json"), "utf8").catch(() => "");
    if (record && JSON.parse(record).replId === replId) return JSON.parse(record).pid;
  }
  return undefined;
}

/** One start of the embedded setup under its own data dir and ports, with an API token ready. */
class Setup {
  output = "";
  exitCode: number | null | undefined;
  private readonly ended: Promise<void>;
  private readonly stopFns: { signal(s: NodeJS.Signals): void; type(text: string): void };

  private constructor(
    readonly dataDir: string,
    readonly corePort: number,
    readonly mcpPort: number,
    readonly previewPort: number,
    readonly token: string,
    how: "npm start in a PTY" | "start script",
  ) {
    const env = {
      ...process.env,
      DEVEX_DATA_DIR: dataDir,
      DEVEX_CORE_PORT: String(corePort),
      DEVEX_MCP_PORT: String(mcpPort),
      DEVEX_PREVIEW_PORT: String(previewPort),
      DEVEX_RUNNER_POOL_SIZE: "1",
      // Only the shutdown persists: a file found in the blob store got there when stopping.
      DEVEX_PERSIST_INTERVAL: "0",
      DEVEX_SKIP_WEB_BUILD: "1",
      DEVEX_LOG_LEVEL: "info",
    };
    const collect = (d: Buffer | string) => {
      this.output += d.toString();
    };
    if (how === "npm start in a PTY") {
      const pty = spawnPty("npm", ["start", "--silent"], { name: "xterm", cols: 200, rows: 50, cwd: root, env });
      pty.onData(collect);
      this.ended = new Promise((r) =>
        pty.onExit((e) => {
          this.exitCode = e.exitCode;
          r();
        }),
      );
      this.stopFns = { signal: (s) => pty.kill(s), type: (text) => pty.write(text) };
    } else {
      const child: ChildProcess = spawn(process.execPath, [startScript], {
        cwd: root,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout?.on("data", collect);
      child.stderr?.on("data", collect);
      this.ended = new Promise((r) =>
        child.once("exit", (code) => {
          this.exitCode = code;
          r();
        }),
      );
      this.stopFns = { signal: (s) => child.kill(s), type: () => assert.fail("no terminal") };
    }
  }

  static async start(how: "npm start in a PTY" | "start script"): Promise<Setup> {
    // Short: runner and core sockets live under it (Unix socket paths are limited to 107 bytes).
    const dataDir = await mkdtemp(join(tmpdir(), "dvx-"));
    const state = await createEmbeddedStore(join(dataDir, "state"));
    const { secret } = await issueApiToken(state, "alice", "test");
    await state.close();
    const [corePort, mcpPort, previewPort] = await freePorts(3);
    const setup = new Setup(dataDir, corePort!, mcpPort!, previewPort!, secret, how);
    await until(
      "the setup to say it is running",
      () => setup.output.includes("Press Ctrl-C"),
      90_000,
      () => setup.output,
    );
    return setup;
  }

  /** Starts a repl with a file written through the runner API and a long-running command in it. */
  async runRepl(): Promise<{ replId: string; content: string; runnerPid: number }> {
    const core = coreClientsFor(`http://127.0.0.1:${this.corePort}`, { token: this.token });
    const { repl } = await core.repls.createRepl({ name: "kept", template: "node" });
    const { runner } = await core.repls.startRepl({ replId: repl!.replId });
    const files = runnerClientsFor(runner!.url, { token: runner!.token });
    const content = `written before stopping ${Date.now()}`;
    await files.files.writeFile({ path: "kept.txt", content: Buffer.from(content) });
    // A dev server stand-in, named by the data dir so that the process scan finds it.
    await files.processes.startProcess({ command: { argv: ["sh", "-c", "sleep 600; :", this.dataDir] } });
    const runnerPid = await runnerPidOf(this.dataDir, repl!.replId);
    assert.ok(runnerPid && isAlive(runnerPid), "the repl's runner record names a live process");
    return { replId: repl!.replId, content, runnerPid };
  }

  signal(s: NodeJS.Signals) {
    this.stopFns.signal(s);
  }

  type(text: string) {
    this.stopFns.type(text);
  }

  /** Resolves when the start script (or npm around it) has exited. */
  exited(): Promise<void> {
    return this.ended;
  }

  /** The repl's stored file and state once stopped, and that nothing of the data dir still runs. */
  async assertStoppedCleanly(replId: string, content: string, runnerPid: number) {
    await until(
      "every process of the data dir to exit",
      async () => !(await processesOf(this.dataDir)).length,
      60_000,
      () => this.output,
    );
    assert.ok(!isAlive(runnerPid), "the runner process is gone");
    const stored = await readStoredWorkspace(
      createLocalBlobStore(join(this.dataDir, "blobs")),
      `repl/alice/${replId}/`,
    );
    assert.equal(stored.get("kept.txt")?.toString(), content, "the file reached the blob store");
    const state = await createEmbeddedStore(join(this.dataDir, "state"));
    try {
      assert.equal((await state.getRepl(replId))?.status, "stopped");
      assert.equal(await state.getActiveSession(replId), undefined);
    } finally {
      await state.close();
    }
  }

  /** The command lines of the setup's own processes (the test's scan also finds npm and the repl's). */
  async commandLines(): Promise<string[]> {
    const lines = await Promise.all(
      (await processesOf(this.dataDir)).map((pid) => readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")),
    );
    return lines.map((l) => l.split("\0").join(" ").trim()).filter(Boolean);
  }

  /** How many times core logged stopping this repl's runner (its persist is part of the stop). */
  stopsLogged(replId: string): number {
    return this.output.split("\n").filter((l) => l.includes(replId) && /runner stopped(?! sending)/.test(l)).length;
  }

  async dispose() {
    for (const pid of await processesOf(this.dataDir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

describe("npm start (scripts/start.ts)", function () {
  this.timeout(150_000);
  let setup: Setup | undefined;
  afterEach(async () => {
    await setup?.dispose();
    setup = undefined;
  });

  it("Ctrl-C typed into its terminal persists the running repl once, exits 0 and leaves no process", async () => {
    setup = await Setup.start("npm start in a PTY");
    const s = setup;
    assert.match(s.output, new RegExp(`Open: +http://127\\.0\\.0\\.1:${s.corePort}`), s.output);
    assert.match(s.output, /Sign in once: +http:\/\/127\.0\.0\.1:\d+\/auth\/login\?code=\S+/);
    assert.match(s.output, new RegExp(`MCP endpoint: +http://127\\.0\\.0\\.1:${s.mcpPort}/mcp`));
    assert.equal((await fetch(`http://127.0.0.1:${s.mcpPort}/healthz`)).status, 200);
    const { replId, content, runnerPid } = await s.runRepl();
    const running = await processesOf(s.dataDir);
    // npm, the start script, core, MCP, the pooled and the assigned runner, the repl's command.
    assert.ok(running.length >= 6, `the scan sees the setup's processes: ${running}`);
    // Every service runs from its bundle: no process loads a TypeScript loader or a .ts file.
    const commands = await s.commandLines();
    for (const bundle of ["dist/start/main.mjs", "dist/core/main.mjs", "dist/mcp/main.mjs", "dist/runner/pooled.mjs"])
      assert.ok(
        commands.some((c) => c.includes(bundle)),
        `a process runs ${bundle}:\n${commands.join("\n")}`,
      );
    const nodes = commands.filter((c) => /^(\S*\/)?node /.test(c));
    for (const c of nodes) assert.match(c, /^\S+ (--[\w=-]+ )*(\S+\/)?dist\/\w+\/\w+\.mjs( |$)/, c);

    s.type("\x03");
    await s.exited();
    assert.equal(s.exitCode, 0, s.output);
    await s.assertStoppedCleanly(replId, content, runnerPid);
    assert.equal(s.stopsLogged(replId), 1, s.output);
  });

  it("while it runs, core's CLI (as its banner says) makes a working API token and one-time login links", async () => {
    setup = await Setup.start("start script");
    const s = setup;
    const command = `DEVEX_DATA_DIR=${s.dataDir} node dist/core/cli.mjs`;
    assert.ok(s.output.includes(`Another link:  ${command} login-link`), s.output);
    assert.ok(s.output.includes(`API token:     ${command} create-token --user <user> --name <name>`), s.output);
    const coreUrl = `http://127.0.0.1:${s.corePort}`;
    const cli = (args: string[], uid?: number) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const env = { ...process.env, DEVEX_DATA_DIR: s.dataDir, REDIS_URL: "" };
        execFile(
          process.execPath,
          ["dist/core/cli.mjs", ...args],
          { cwd: root, env, uid, gid: uid },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });

    // A token for a user who never signed in, usable at once (core keeps the embedded state in memory).
    const made = await cli(["create-token", "--user", "bob", "--name", "laptop", "--ttl", "7d"]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /API token "laptop" \(id \S+\) for bob, expires /);
    const bob = coreClientsFor(coreUrl, { token: made.stdout.trim() });
    assert.equal((await bob.auth.getCurrentUser({})).user?.userId, "bob");
    // What core refuses comes back in words, with no stack.
    const bad = await cli(["create-token", "--user", "Bad User", "--name", "x"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /user_id/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);

    // A fresh login link for the embedded user, and one for bob: each works once.
    for (const [args, userId] of [
      [[], "local"],
      [["--user", "bob"], "bob"],
    ] as const) {
      const link = await cli(["login-link", ...args]);
      assert.equal(link.code, 0, link.stderr);
      const url = link.stdout.trim();
      assert.match(url, new RegExp(`^${coreUrl}/auth/login\\?code=[\\w-]{32}$`));
      const first = await fetch(url, { redirect: "manual" });
      assert.equal(first.status, 302);
      const cookie = first.headers
        .getSetCookie()
        .map((c) => c.split(";")[0])
        .join("; ");
      const me = await fetch(`${coreUrl}/devex.core.v1.AuthService/GetCurrentUser`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie },
        body: "{}",
      });
      assert.equal(((await me.json()) as { user: { userId: string } }).user.userId, userId);
      const again = await fetch(url, { redirect: "manual" });
      assert.equal(again.status, 403);
      assert.match(
        await again.text(),
        /already used: get a new one on core's machine: node dist\/core\/cli\.mjs login-link/,
      );
    }

    // The socket's folder is core's user's alone; anyone else is told so.
    const folder = join(s.dataDir, "admin");
    assert.equal((await stat(folder)).mode & 0o777, 0o700);
    assert.equal((await stat(join(folder, "core.sock"))).mode & 0o777, 0o600);
    if (process.getuid?.() === 0) {
      const stranger = await cli(["login-link"], 65534);
      if (/Cannot find module|EACCES: permission denied, (open|stat|scandir) '\/(?!.*admin)/.test(stranger.stderr))
        console.log(
          `      (skipped the other-user check: uid 65534 cannot read the checkout: ${stranger.stderr.slice(0, 200)})`,
        );
      else {
        assert.equal(stranger.code, 1, stranger.stderr);
        assert.match(stranger.stderr, /run this as the user core runs as \(or root\)/);
        assert.doesNotMatch(stranger.stdout, /auth\/login/);
      }
    }
  });

  it("one SIGTERM to the start script persists the running repl once and leaves no process", async () => {
    setup = await Setup.start("start script");
    const s = setup;
    const { replId, content, runnerPid } = await s.runRepl();
    s.signal("SIGTERM");
    await s.exited();
    assert.equal(s.exitCode, 0, s.output);
    await s.assertStoppedCleanly(replId, content, runnerPid);
    assert.equal(s.stopsLogged(replId), 1, s.output);
  });

  it("the start script SIGKILLed: core and MCP notice, persist the running repl and exit", async () => {
    setup = await Setup.start("start script");
    const s = setup;
    const { replId, content, runnerPid } = await s.runRepl();
    s.signal("SIGKILL");
    await s.exited();
    await s.assertStoppedCleanly(replId, content, runnerPid);
  });
});
