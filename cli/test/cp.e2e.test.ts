/**
 * `devex cp` end to end, as a user's copy goes: the real CLI as a child process, through core's
 * /<replId>/ proxy (gRPC over HTTP/2), to a real runner process. A 1 GiB round trip of generated data
 * with matching SHA-256s, reporting the rate and the peak RSS (VmHWM) of the runner, of core (this
 * process, its peak reset first) and of the CLI; a CLI killed mid-upload leaves nothing under the
 * final name (nor a temporary file); folders with -r both ways; clear errors.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerClients } from "../../lib/client/clients.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { type Embedded, startEmbedded } from "../../services/core/test/embedded.js";
import { cliEnv, devexBin, runCli } from "./cli-process.js";

const SIZE = Number(process.env.CP_BYTES ?? 1024 ** 3);
const MiB = 1024 * 1024;

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Peak resident memory (VmHWM) of a process, in MiB; undefined once it is gone. */
function peakMiB(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Starts a process's peak over (root, or the process's own user, may). */
function resetPeak(pid: number) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {}
}

/** The runner processes (node, running the runner's bundle), not their sandbox wrappers. */
function runnerPids(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      const comm = readFileSync(`/proc/${d}/comm`, "utf8").trim();
      if (cmd.includes("dist/runner/pooled.mjs") && comm.startsWith("node")) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

/** Runs the CLI, watching the peaks of it, the runners and this process (core) while it runs. */
async function measuredCli(args: string[], env: NodeJS.ProcessEnv) {
  const runners = runnerPids();
  // Without them the runner's peak would read 0 and pass any bound.
  assert.ok(runners.length > 0, "found the runner processes to measure");
  for (const pid of [process.pid, ...runners]) resetPeak(pid);
  const coreBefore = process.memoryUsage().rss / MiB;
  const start = performance.now();
  const child = spawn(process.execPath, [devexBin, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  let cli = 0;
  const timer = setInterval(() => (cli = Math.max(cli, peakMiB(child.pid!) ?? 0)), 50);
  const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
  clearInterval(timer);
  const seconds = (performance.now() - start) / 1000;
  const runner = Math.max(...runners.map((p) => peakMiB(p) ?? 0));
  assert.ok(runner > 0, "read the runners' peak memory");
  return { code, out, seconds, coreBefore, peaks: { runner, core: peakMiB(process.pid) ?? 0, cli } };
}

describe("devex cp (embedded core, real runner)", function () {
  this.timeout(600_000);
  let e: Embedded;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let replId: string;
  let runner: RunnerClients;

  /** `ls -a` of a workspace directory, temporary files included (the file tools hide those). */
  const lsA = async (dir = ".") => {
    const res = await runner.processes.exec({ command: { argv: ["ls", "-a", dir] } });
    let text = "";
    for await (const m of res) if (m.event.case === "stdout") text += Buffer.from(m.event.value).toString();
    return text.split("\n").filter(Boolean);
  };

  before(async () => {
    e = await startEmbedded();
    home = await mkdtemp(join(tmpdir(), "devex-cp-"));
    env = cliEnv(join(home, "config"));
    const token = (await issueApiToken(e.state, "alice", "cp")).secret;
    assert.equal((await runCli(["login", "--url", e.core.url, "--token", token], env)).code, 0);
    const core = await e.login("alice");
    replId = (await core.repls.createRepl({ name: "cp", template: "node" })).repl!.replId;
    const started = await core.repls.startRepl({ replId });
    runner = e.runner(started.runner!);
  });
  after(async () => {
    await e?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it(`round-trips ${SIZE / MiB} MiB of generated data with matching SHA-256s, in bounded memory`, async () => {
    const src = join(home, "big.bin");
    const fh = await open(src, "w");
    const block = randomBytes(MiB);
    for (let i = 0; i < SIZE / MiB; i++) {
      block.writeUInt32LE(i, 0); // no two MiB alike
      await fh.write(block);
    }
    await fh.close();
    const digest = await sha256File(src);
    const up = await measuredCli(["cp", src, `${replId}:data/big.bin`], env);
    assert.equal(up.code, 0, up.out);
    assert.match(up.out, new RegExp(`sha256 ${digest}`));
    const back = join(home, "back.bin");
    const down = await measuredCli(["cp", `${replId}:data/big.bin`, back], env);
    assert.equal(down.code, 0, down.out);
    assert.equal(await sha256File(back), digest);
    for (const [what, r] of [
      ["upload", up],
      ["download", down],
    ] as const) {
      const rate = SIZE / MiB / r.seconds;
      console.log(
        `      ${what}: ${rate.toFixed(0)} MiB/s; peak RSS: runner ${r.peaks.runner.toFixed(0)} MiB, core ${r.peaks.core.toFixed(0)} MiB (this process, ${r.coreBefore.toFixed(0)} MiB before), cli ${r.peaks.cli.toFixed(0)} MiB`,
      );
      assert.ok(r.peaks.runner < 250, `the runner peaked at ${r.peaks.runner} MiB`);
      assert.ok(r.peaks.cli < 250, `the CLI peaked at ${r.peaks.cli} MiB`);
      assert.ok(r.peaks.core - r.coreBefore < 150, `core grew by ${r.peaks.core - r.coreBefore} MiB`);
    }
    await rm(back);
  });

  it("a CLI killed mid-upload leaves no file under the final name, nor a temporary file", async () => {
    const src = join(home, "big.bin");
    const child: ChildProcess = spawn(process.execPath, [devexBin, "cp", src, `${replId}:cut.bin`], {
      env,
      stdio: "ignore",
    });
    try {
      for (let i = 0; ; i++) {
        if ((await lsA()).some((n) => n.startsWith(".cut.bin.devex-"))) break;
        assert.ok(i < 400 && child.exitCode === null, "the upload's temporary file never appeared");
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      child.kill("SIGKILL");
    }
    for (let i = 0; ; i++) {
      const names = await lsA();
      if (!names.some((n) => n.includes("cut.bin"))) break;
      assert.ok(i < 200, `still there: ${names.filter((n) => n.includes("cut.bin"))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it("copies folders with -r both ways (symlinks as links), into an existing folder under its own name", async () => {
    const tree = join(home, "tree");
    await mkdir(join(tree, "a/b"), { recursive: true });
    await writeFile(join(tree, "a/b/c.txt"), "deep");
    await writeFile(join(tree, "top.txt"), "top");
    await symlink("a/b/c.txt", join(tree, "ln"));
    const up = await runCli(["cp", "-r", tree, `${replId}:`], env);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual((await lsA("tree")).sort(), [".", "..", "a", "ln", "top.txt"]);
    const dest = join(home, "out");
    await mkdir(dest);
    const down = await runCli(["cp", "-r", `${replId}:tree`, dest], env);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await readFile(join(dest, "tree/a/b/c.txt"), "utf8"), "deep");
    assert.equal(await readlink(join(dest, "tree/ln")), "a/b/c.txt");
  });

  it("says clearly what is wrong", async () => {
    const missing = await runCli(["cp", join(home, "nope"), `${replId}:x`], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such file or directory/);
    const dir = await runCli(["cp", join(home, "tree"), `${replId}:x`], env);
    assert.equal(dir.code, 2);
    assert.match(dir.stderr, /is a directory: use cp -r/);
    const remoteMissing = await runCli(["cp", `${replId}:nope.txt`, home], env);
    assert.equal(remoteMissing.code, 1);
    assert.match(remoteMissing.stderr, /nope.txt: no such file or directory/);
    const both = await runCli(["cp", `${replId}:a`, `${replId}:b`], env);
    assert.equal(both.code, 2);
  });
});
