/**
 * CLI start-up benchmark (`npm run bench -- cli [--runs 10]`): wall-clock of a fresh process, from
 * spawn to exit, median and p90 of `--runs` runs each, run one at a time in interleaved rounds (after
 * one unrecorded round that warms the page cache):
 *
 *   floor          node -e 0
 *   help           node dist/cli/devex.mjs --help   (the bundled CLI, as installed)
 *   help-checkout  node cli/devex.mjs --help        (the checkout's bin: staleness check, then the bundle)
 *   help-tsx       node --import tsx cli/src/main.ts --help   (the old way, for reference)
 *   ls, ls-checkout, ls-tsx   the same three with `ls`, against a core this process runs
 *
 * The core is start-core.ts over a scratch data dir (no warm pool: ls starts no runner, and pooled
 * runners warming up would compete for the 2 CPUs), with 3 repls so ls prints rows; the CLI gets its
 * login from DEVEX_URL and DEVEX_TOKEN and a scratch XDG_CONFIG_HOME.
 * Targets: devex --help ≤ 300 ms and devex ls ≤ 500 ms (median), for both the bundle and the checkout bin.
 *
 * Writes bench/results/cli.json.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { machineCpu } from "./lib/proc-mem.js";
import { startScratchCore } from "./lib/scratch-core.js";
import { machine, median, percentile, round1 } from "./lib/stats.js";

const root = fileURLToPath(new URL("..", import.meta.url));

interface Command {
  name: string;
  args: string[];
  /** Needs the core's login in its environment. */
  login?: boolean;
}

const commands: Command[] = [
  { name: "floor", args: ["-e", "0"] },
  { name: "help", args: ["dist/cli/devex.mjs", "--help"] },
  { name: "help-checkout", args: ["cli/devex.mjs", "--help"] },
  { name: "help-tsx", args: ["--import", "tsx", "cli/src/main.ts", "--help"] },
  { name: "ls", args: ["dist/cli/devex.mjs", "ls"], login: true },
  { name: "ls-checkout", args: ["cli/devex.mjs", "ls"], login: true },
  { name: "ls-tsx", args: ["--import", "tsx", "cli/src/main.ts", "ls"], login: true },
];

const targets = [
  { command: "help", what: "devex --help (bundle)", targetMedianMs: 300 },
  { command: "help-checkout", what: "devex --help (checkout bin)", targetMedianMs: 300 },
  { command: "ls", what: "devex ls (bundle)", targetMedianMs: 500 },
  { command: "ls-checkout", what: "devex ls (checkout bin)", targetMedianMs: 500 },
];

/** Runs `node <args>` to completion; its wall-clock time in ms and what it printed. */
function timeNode(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr += s;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - began;
      if (code === 0) resolve({ ms, stdout });
      else reject(new Error(`node ${args.join(" ")} exited ${code}: ${stderr.slice(0, 500)}`));
    });
  });
}

/**
 * Where ls's time beyond --help goes: a process that only imports the bundle's commands chunk (what
 * main.ts loads for any command but help and completion) prints how long that import took.
 */
function importCommandsArgs(): string[] {
  const chunk = readdirSync(join(root, "dist/cli/chunks")).find((f) => /^commands-.*\.mjs$/.test(f));
  if (!chunk) throw new Error("dist/cli/chunks has no commands chunk");
  const code = `const t = performance.now(); await import("./dist/cli/chunks/${chunk}"); console.log(performance.now() - t);`;
  return ["--input-type=module", "-e", code];
}

/** The environment the measured processes get: this one without loaders or a stored login. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of Object.keys(env))
    if (k === "NODE_OPTIONS" || (k.startsWith("DEVEX_") && !(k in extra))) delete env[k];
  return env;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { runs: { type: "string", default: "10" } } });
  const runs = Number(values.runs);
  // A stale bundle would be rebuilt by the checkout bin's first run; build it first, outside the timing.
  execFileSync(process.execPath, ["scripts/build.mjs", "--if-stale", "--quiet", "cli"], {
    cwd: root,
    stdio: "inherit",
  });

  const loadAtStart = loadavg().map(round1);
  const cpuAtStart = machineCpu();
  const configHome = await mkdtemp(join(tmpdir(), "devex-bench-cli-config-"));
  const core = await startScratchCore("cli", { DEVEX_RUNNER_POOL_SIZE: "0", DEVEX_REPL_QUOTA: "10" });
  const samples = new Map<string, number[]>(commands.map((c) => [c.name, []]));
  const importCommandsMs: number[] = [];
  let lsOutput = "";
  try {
    for (let i = 0; i < 3; i++) await core.api.repls.createRepl({ name: `bench-cli-${i}`, template: "node" });
    const plain = childEnv({ XDG_CONFIG_HOME: configHome });
    const withLogin = childEnv({ XDG_CONFIG_HOME: configHome, DEVEX_URL: core.url, DEVEX_TOKEN: core.token });
    for (let round = -1; round < runs; round++) {
      for (const c of commands) {
        const { ms, stdout } = await timeNode(c.args, c.login ? withLogin : plain);
        if (c.name === "ls") {
          lsOutput = stdout;
          const rows = stdout.split("\n").filter((l) => l.includes("bench-cli-")).length;
          if (rows !== 3) throw new Error(`devex ls printed ${rows} of the 3 repls:\n${stdout}`);
        }
        if (round >= 0) samples.get(c.name)!.push(ms);
      }
      const { stdout } = await timeNode(importCommandsArgs(), plain);
      if (round >= 0) importCommandsMs.push(Number(stdout));
    }
  } finally {
    await core.close();
    await rm(configHome, { recursive: true, force: true });
  }

  const cpuAtEnd = machineCpu();
  const summary = (xs: number[]) => ({
    medianMs: round1(median(xs)),
    p90Ms: round1(percentile(xs, 90)),
    minMs: round1(Math.min(...xs)),
    maxMs: round1(Math.max(...xs)),
  });
  const floorMedian = median(samples.get("floor")!);
  const figures = Object.fromEntries(
    commands.map((c) => {
      const xs = samples.get(c.name)!;
      return [
        c.name,
        {
          command: `node ${c.args.join(" ")}`,
          ...summary(xs),
          overFloorMs: c.name === "floor" ? undefined : round1(median(xs) - floorMedian),
          samplesMs: xs.map(round1),
        },
      ];
    }),
  );
  const result = {
    benchmark: "cli",
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      runs,
      method:
        "wall-clock of a fresh process, spawn to exit, measured in this (bench) process; one at a time, commands interleaved round by round after one unrecorded round",
      core: "start-core.ts in the bench process over a scratch data dir (local driver, no warm pool), 3 repls of the node template",
      login: "DEVEX_URL + DEVEX_TOKEN (an API token), scratch XDG_CONFIG_HOME",
      lsOutput: lsOutput.trimEnd().split("\n"),
      // Other work on the machine slows every command alike; the floor shows by how much.
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg().map(round1),
      machineBusyPercent: round1((100 * (cpuAtEnd.busy - cpuAtStart.busy)) / (cpuAtEnd.total - cpuAtStart.total)),
    },
    floor: figures.floor,
    figures,
    diagnostics: {
      importCommandsChunkMs: {
        what: "in-process time to import dist/cli/chunks/commands-*.mjs, which every command but help and completion loads",
        ...summary(importCommandsMs),
      },
    },
    targets: targets.map((t) => {
      const m = median(samples.get(t.command)!);
      return { ...t, measuredMedianMs: round1(m), floorMedianMs: round1(floorMedian), met: m <= t.targetMedianMs };
    }),
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/cli.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  for (const c of commands) {
    const f = figures[c.name];
    console.log(`${c.name.padEnd(14)} median ${f.medianMs} ms  p90 ${f.p90Ms} ms   (${f.command})`);
  }
  console.log("wrote bench/results/cli.json");
}
