/**
 * Start-up benchmark (`npm run bench -- starts [--runs 10]`): how long a fresh process takes to
 * answer, median and p90 of `--runs` runs each, one at a time in interleaved rounds after one
 * unrecorded round:
 *
 *   floor           node with a bare node:http server answering /healthz (Node's own start)
 *   runner          node <runnerNodeFlags> dist/runner/main.mjs → /healthz (a fresh, unpooled runner)
 *   runner-tsx      node --import tsx services/runner/src/main.ts → /healthz (the old way, reference)
 *   core            node dist/core/main.mjs → /healthz (embedded state and blobs, local driver)
 *   npm-start       npm start (nothing to build) → its "Press Ctrl-C" banner; fewer runs (`--start-runs`)
 *
 * Targets: a fresh runner answers /healthz in ≤ 300 ms; `npm start` shows its banner within 5 s.
 * Writes bench/results/starts.json.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runnerNodeFlags } from "../lib/contracts/runner-node-flags.mjs";
import { projectRoot } from "../lib/kit/project-root.js";
import { generateSigningKey } from "../lib/kit/tokens.js";
import { freePort } from "../lib/testing/ports.js";
import { machine, median, percentile, round1 } from "./lib/stats.js";

interface Start {
  name: string;
  /** The command and its environment, given a scratch dir and a free port. */
  command(dir: string, port: number): { file: string; args: string[]; env: NodeJS.ProcessEnv };
  /** What says it is up: /healthz on the port answering 200, or a line in its output. */
  ready: { healthz: true } | { output: string };
}

const floorServer =
  "require('node:http').createServer((q,s)=>s.end('ok')).listen(Number(process.env.PORT),'127.0.0.1')";

function runnerEnv(dir: string, port: number, publicKeyPem: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DEVEX_RUNNER_WORKSPACE: join(dir, "ws"),
    DEVEX_REPL_ID: "bench-start",
    DEVEX_RUNNER_PORT: String(port),
    DEVEX_TOKEN_PUBLIC_KEY: publicKeyPem,
    DEVEX_LOG_FORMAT: "json",
  };
}

function starts(publicKeyPem: string): Start[] {
  const node = process.execPath;
  return [
    {
      name: "floor",
      command: (_dir, port) => ({ file: node, args: ["-e", floorServer], env: { ...process.env, PORT: String(port) } }),
      ready: { healthz: true },
    },
    {
      name: "runner",
      command: (dir, port) => ({
        file: node,
        args: [...runnerNodeFlags, join(projectRoot, "dist/runner/main.mjs")],
        env: runnerEnv(dir, port, publicKeyPem),
      }),
      ready: { healthz: true },
    },
    {
      name: "runner-tsx",
      command: (dir, port) => ({
        file: node,
        args: ["--import", "tsx", join(projectRoot, "services/runner/src/main.ts")],
        env: runnerEnv(dir, port, publicKeyPem),
      }),
      ready: { healthz: true },
    },
    {
      name: "core",
      command: (dir, port) => ({
        file: node,
        args: [join(projectRoot, "dist/core/main.mjs")],
        env: { ...process.env, DEVEX_DATA_DIR: dir, DEVEX_CORE_PORT: String(port), DEVEX_RUNNER_POOL_SIZE: "0" },
      }),
      ready: { healthz: true },
    },
  ];
}

const npmStart: Start = {
  name: "npm-start",
  command: (dir, port) => ({
    file: "npm",
    args: ["start", "--silent"],
    env: { ...process.env, DEVEX_DATA_DIR: dir, DEVEX_CORE_PORT: String(port), DEVEX_MCP_PORT: String(port + 2) },
  }),
  ready: { output: "Press Ctrl-C" },
};

async function stopTree(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  process.kill(-child.pid!, "SIGTERM");
  const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Starts one process in its own group and times spawn → ready; stops it (and its group) after. */
async function timeStart(s: Start): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "dvx-bench-start-"));
  // npm start listens on port, port + 1 (previews) and port + 2 (MCP); free ports lie below the ephemeral range.
  const port = await freePort();
  const { file, args, env } = s.command(dir, port);
  let output = "";
  const began = performance.now();
  const child = spawn(file, args, { cwd: projectRoot, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${s.name} exited with ${child.exitCode}:\n${output}`);
      const up =
        "healthz" in s.ready
          ? (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok
          : output.includes(s.ready.output);
      if (up) return performance.now() - began;
      if (performance.now() - began > 60_000) throw new Error(`${s.name} not up after 60 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await stopTree(child);
    await rm(dir, { recursive: true, force: true });
  }
}

const summary = (xs: number[]) => ({
  medianMs: round1(median(xs)),
  p90Ms: round1(percentile(xs, 90)),
  samplesMs: xs.map(round1),
});

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: "string", default: "10" }, "start-runs": { type: "string", default: "3" } },
  });
  const runs = Number(values.runs);
  const startRuns = Number(values["start-runs"]);
  const key = generateSigningKey();
  const list = starts(key.publicKeyPem);
  const load = [loadavg().map(round1)];
  const samples = new Map<string, number[]>([...list, npmStart].map((s) => [s.name, []]));
  for (let round = 0; round <= runs; round++) {
    const batch = round <= startRuns ? [...list, npmStart] : list;
    for (const s of batch) {
      const ms = await timeStart(s);
      if (round > 0) samples.get(s.name)!.push(ms);
    }
    process.stderr.write(`round ${round}/${runs} done\n`);
  }
  load.push(loadavg().map(round1));
  const figures = Object.fromEntries([...samples].map(([name, xs]) => [name, summary(xs)]));
  const targets = [
    { what: "a fresh runner answers /healthz", figure: "runner", targetMedianMs: 300 },
    { what: "npm start shows its banner (nothing to build)", figure: "npm-start", targetMedianMs: 5000 },
  ].map((t) => ({ ...t, medianMs: figures[t.figure].medianMs, met: figures[t.figure].medianMs <= t.targetMedianMs }));
  const result = {
    benchmark: "starts",
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      runs,
      npmStartRuns: startRuns,
      method:
        "spawn → ready (/healthz 200, or the banner in the output), polled every 5 ms; each process stopped before the next",
      runnerNodeFlags,
      loadAverageAtStartAndEnd: load,
    },
    figures,
    targets,
  };
  mkdirSync(join(projectRoot, "bench/results"), { recursive: true });
  await writeFile(join(projectRoot, "bench/results/starts.json"), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(
    1,
    `${JSON.stringify({ figures: Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, v.medianMs])), targets }, null, 2)}\n`,
  );
}
