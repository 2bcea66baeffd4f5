/**
 * Transfer benchmark (`npm run bench -- transfer [--mib 1024]`): a file of generated data (no two
 * MiB alike) copied into a repl and back with `devex cp`, as a user does it (the bundled CLI as a
 * child process, through core's /<replId>/ proxy over gRPC, to a real runner process under the
 * local driver), each direction's rate and the peak RSS (VmHWM, reset before each copy) of the
 * runner, core (this process: start-core.ts) and the CLI. Floors measured in the same run, on the
 * same file and disk:
 *
 *   file-copy        a streamed read → write copy of the file, fsynced (what the disk allows)
 *   raw-http-up      curl -T of the file to a bare node:http server writing it to disk (no checks)
 *   raw-http-down    curl of the file from that server
 *   sha256           hashing the file once (devex cp hashes it on both ends: the CLI and the runner)
 *
 * Writes bench/results/transfer.json.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startScratchCore } from "./lib/scratch-core.js";
import { machine, round1 } from "./lib/stats.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const MiB = 1024 * 1024;

function peakMiB(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function resetPeak(pid: number) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {}
}

/** The runner processes (node running the runner's bundle), not their sandbox wrappers. */
function runnerPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const comm = readFileSync(`/proc/${d}/comm`, "utf8").trim();
        return comm.startsWith("node") && readFileSync(`/proc/${d}/cmdline`, "utf8").includes("dist/runner/pooled.mjs");
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** CPU seconds (user + system) a process used so far. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await f();
  return (performance.now() - start) / 1000;
}

async function generate(path: string, mib: number) {
  const fh = await open(path, "w");
  const block = randomBytes(MiB);
  for (let i = 0; i < mib; i++) {
    block.writeUInt32LE(i, 0);
    await fh.write(block);
  }
  await fh.close();
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const c of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(c as Buffer);
  return hash.digest("hex");
}

function runProcess(
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; pid: number }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code: code ?? -1, out, pid: child.pid ?? 0 }));
  });
}

/** The floors: a plain copy, a bare HTTP stream each way, one hash of the file. */
async function floors(dir: string, src: string, mib: number) {
  const rate = (s: number) => round1(mib / s);
  const copy = await timed(async () => {
    const out = createWriteStream(join(dir, "copy.bin"));
    await pipeline(createReadStream(src, { highWaterMark: MiB }), out);
    execFileSync("sync", [join(dir, "copy.bin")]);
  });
  await rm(join(dir, "copy.bin"));
  const server = createServer((req, res) => {
    if (req.method === "PUT") void pipeline(req, createWriteStream(join(dir, "raw.bin"))).then(() => res.end("ok"));
    else void pipeline(createReadStream(src, { highWaterMark: MiB }), res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const up = await timed(() => runProcess("curl", ["-sS", "-T", src, `http://127.0.0.1:${port}/x`]));
  const down = await timed(() =>
    runProcess("curl", ["-sS", "-o", join(dir, "raw-down.bin"), `http://127.0.0.1:${port}/x`]),
  );
  server.close();
  await rm(join(dir, "raw.bin"), { force: true });
  await rm(join(dir, "raw-down.bin"), { force: true });
  const hash = await timed(() => sha256(src));
  return {
    fileCopyMiBps: rate(copy),
    rawHttpUpMiBps: rate(up),
    rawHttpDownMiBps: rate(down),
    sha256MiBps: rate(hash),
  };
}

/** One `devex cp`, with the peaks of the runner, core (this process) and the CLI while it ran. */
async function cp(args: string[], env: NodeJS.ProcessEnv, mib: number) {
  const runners = runnerPids();
  for (const pid of [process.pid, ...runners]) resetPeak(pid);
  const coreBefore = process.memoryUsage().rss / MiB;
  const cpuBefore = [process.pid, ...runners].map(cpuSeconds);
  const start = performance.now();
  const child = spawn(process.execPath, ["cli/devex.mjs", "cp", ...args], {
    env,
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  let cli = 0;
  let cliCpu = 0;
  const timer = setInterval(() => {
    cli = Math.max(cli, peakMiB(child.pid ?? 0));
    cliCpu = Math.max(cliCpu, cpuSeconds(child.pid ?? 0));
  }, 50);
  const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
  clearInterval(timer);
  const seconds = (performance.now() - start) / 1000;
  if (code !== 0) throw new Error(`devex cp ${args.join(" ")} failed: ${out}`);
  const cpuAfter = [process.pid, ...runners].map(cpuSeconds);
  const used = cpuAfter.map((c, i) => c - cpuBefore[i]);
  return {
    cpuSeconds: { core: round1(used[0]), runner: round1(Math.max(0, ...used.slice(1))), cli: round1(cliCpu) },
    seconds: round1(seconds),
    MiBps: round1(mib / seconds),
    peakRssMiB: {
      runner: round1(Math.max(0, ...runners.map(peakMiB))),
      core: round1(peakMiB(process.pid)),
      coreBefore: round1(coreBefore),
      cli: round1(cli),
    },
  };
}

export async function run(args: string[]) {
  const { values } = parseArgs({ args, options: { mib: { type: "string", default: "1024" } } });
  const mib = Number(values.mib);
  const dir = await mkdtemp(join(tmpdir(), "devex-bench-transfer-"));
  const loadStart = loadavg();
  const core = await startScratchCore("transfer", { DEVEX_RUNNER_POOL_SIZE: "1" });
  try {
    const src = join(dir, "src.bin");
    await generate(src, mib);
    const digest = await sha256(src);
    const floor = await floors(dir, src, mib);
    const replId = (await core.api.repls.createRepl({ name: "bench-transfer", template: "node" })).repl!.replId;
    await core.api.repls.startRepl({ replId });
    const env = { ...process.env, XDG_CONFIG_HOME: join(dir, "config"), DEVEX_URL: core.url, DEVEX_TOKEN: core.token };
    const upload = await cp([src, `${replId}:bench.bin`], env, mib);
    const download = await cp([`${replId}:bench.bin`, join(dir, "back.bin")], env, mib);
    if ((await sha256(join(dir, "back.bin"))) !== digest) throw new Error("the round trip changed the file");
    const result = {
      benchmark: "transfer",
      date: new Date().toISOString(),
      machine: machine(),
      setup: {
        bytes: mib * MiB,
        data: "generated: one random MiB repeated with its index in its first 4 bytes (no two MiB alike)",
        path: "devex cp (cli/devex.mjs: the bundled CLI, a child process) → core's /<replId>/ proxy (gRPC, HTTP/2) → runner (local driver, its sandbox)",
        peakRss: "VmHWM from /proc/<pid>/status, reset (clear_refs 5) before each copy; core is this process",
        loadAverageAtStart: loadStart.map(round1),
        loadAverageAtEnd: loadavg().map(round1),
      },
      floor,
      devex: { upload, download, sha256Match: true },
    };
    mkdirSync(join(root, "bench/results"), { recursive: true });
    writeFileSync(join(root, "bench/results/transfer.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ floor, upload, download }, null, 2));
  } finally {
    await core.close();
    await rm(dir, { recursive: true, force: true });
  }
}
