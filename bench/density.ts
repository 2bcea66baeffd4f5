/**
 * Density benchmark (`npm run bench -- density [--repls 20] [--max 150] [--steps 0,20,50,100,150]
 * [--samples 10] [--idle 5] [--detach]`), on the embedded setup as `npm start` builds it (start-core.ts:
 * local driver, warm pool of 2, the default sandbox — bubblewrap when installed — and egress), in this
 * process over a scratch data dir. Only DEVEX_REPL_QUOTA (10,000) and DEVEX_RUNNER_IDLE_TIMEOUT (1 h,
 * so no idle repl is stopped under the bench) are raised.
 *
 * Idle repls are node-template repls started with one terminal each (its first byte read), the
 * terminal's output stream left attached as an open browser tab leaves it (--detach drops it), then
 * left alone `--idle` seconds. Added step by step up to `--max`, stopping early when MemAvailable
 * falls below 25% of MemTotal. At each step:
 *
 * - memory: MemAvailable, and from /proc/<pid>/{status,smaps_rollup} per repl: the runner's node
 *   process (found from the driver's record.json, walking down to the `node` executable), the
 *   bubblewrap wrappers above it, the terminal's processes below it (the user's, reported apart) and
 *   the repl's pasta (its outbound network); RSS, Pss and private (Private_Clean + Private_Dirty);
 * - latency: create → start → first terminal byte over `--samples` fresh repls, each deleted after its
 *   measurement and the next one started once the pool is warm again (as the lifecycle bench does).
 *
 * At `--repls` idle repls the per-runner figures are reported in full. Targets: median runner (node)
 * RSS ≤ 50 MB at `--repls`; density = the largest count at which p99 stays below 2× the first
 * step's p99. Memory per idle repl: MemAvailable drop / count, and the sum of private memory of its
 * processes, as repls per GB.
 *
 * Writes bench/results/density.json.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runnerClientsFor } from "../lib/client/node.js";
import { sleep } from "../lib/kit/sleep.js";
import type { RunnerRecord } from "../services/core/src/driver/local/pool.js";
import {
  ancestorsOf,
  confinement,
  cpuTicks,
  descendantsOf,
  findProgram,
  type MemTotals,
  machineCpu,
  memInfo,
  type ProcMem,
  procMem,
  totals,
} from "./lib/proc-mem.js";
import { type ScratchCore, startScratchCore } from "./lib/scratch-core.js";
import { machine, median, percentile, round1, sum } from "./lib/stats.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const NODE_RSS_TARGET_MB = 50;
const MB = 1024; // KiB per MiB
const mb = (kb: number) => round1(kb / MB);

interface Timing {
  totalMs: number;
  createMs: number;
  startMs: number;
  terminalMs: number;
}

interface OpenRepl {
  replId: string;
  timing: Timing;
  /** Ends the terminal's output stream if it is still attached. */
  detach(): void;
}

/** CreateRepl → StartRepl → CreateTerminal → the terminal's first output byte, through core's public API. */
async function openRepl(core: ScratchCore, name: string, attach: boolean): Promise<OpenRepl> {
  const t0 = performance.now();
  const { repl } = await core.api.repls.createRepl({ name, template: "node" });
  const t1 = performance.now();
  const { runner: access } = await core.api.repls.startRepl({ replId: repl!.replId });
  const t2 = performance.now();
  const runner = runnerClientsFor(access!.url, { token: access!.token });
  const { terminal } = await runner.terminals.createTerminal({ command: [] });
  const abort = new AbortController();
  const noByte = setTimeout(() => abort.abort(new Error(`no terminal output from ${name} in 60 s`)), 60_000);
  const frames = runner.terminals
    .streamOutput({ terminalId: terminal!.terminalId, replay: true }, { signal: abort.signal })
    [Symbol.asyncIterator]();
  try {
    for (;;) {
      const { done, value } = await frames.next();
      if (done) throw new Error(`terminal of ${name} ended before any output`);
      if (value.frame.case === "output" && value.frame.value.length > 0) break;
    }
  } finally {
    clearTimeout(noByte);
  }
  const t3 = performance.now();
  if (attach) {
    void (async () => {
      while (!(await frames.next()).done);
    })().catch(() => {});
  } else {
    abort.abort();
  }
  return {
    replId: repl!.replId,
    timing: { totalMs: t3 - t0, createMs: t1 - t0, startMs: t2 - t1, terminalMs: t3 - t2 },
    detach: () => abort.abort(),
  };
}

interface ReplProcesses {
  replId: string;
  node: ProcMem;
  /** The bubblewrap processes between core and the runner's node. */
  wrappers: MemTotals;
  /** The terminal's processes (its bwrap wrappers and shell): the user's, not the runner's. */
  shells: MemTotals;
  pasta?: ProcMem;
  pids: number[];
}

function records(dataDir: string): RunnerRecord[] {
  const dir = join(dataDir, "local", "runners");
  return readdirSync(dir).flatMap((d) => {
    try {
      return [JSON.parse(readFileSync(join(dir, d, "record.json"), "utf8")) as RunnerRecord];
    } catch {
      return [];
    }
  });
}

/** The processes of one runner, from its record: record.pid may be a wrapper, so walk down to `node`. */
function runnerProcesses(record: RunnerRecord): Omit<ReplProcesses, "replId"> | undefined {
  const nodePid = findProgram(record.pid, "node");
  const node = nodePid && procMem(nodePid);
  if (!nodePid || !node) return undefined;
  const wrappers = ancestorsOf(nodePid, process.pid);
  const shells = descendantsOf(nodePid);
  const pasta = record.pasta ? procMem(record.pasta.pid) : undefined;
  return {
    node,
    wrappers: totals(wrappers.map(procMem)),
    shells: totals(shells.map(procMem)),
    pasta,
    pids: [nodePid, ...wrappers, ...shells, ...(pasta ? [pasta.pid] : [])],
  };
}

function replProcesses(dataDir: string, replIds: Set<string>): ReplProcesses[] {
  return records(dataDir)
    .filter((r) => r.state === "assigned" && r.replId && replIds.has(r.replId))
    .flatMap((r) => {
      const p = runnerProcesses(r);
      return p ? [{ replId: r.replId!, ...p }] : [];
    });
}

/** The private memory one repl's processes hold (runner, wrappers, terminal, pasta), KiB. */
const replPrivate = (p: ReplProcesses) =>
  p.node.private + p.wrappers.private + p.shells.private + (p.pasta?.private ?? 0);
const replPss = (p: ReplProcesses) => p.node.pss + p.wrappers.pss + p.shells.pss + (p.pasta?.pss ?? 0);

const medianMB = (xs: number[]) => (xs.length ? mb(median(xs)) : null);

/** Least-squares slope of ys over xs (the marginal cost of one more repl, free of constant offsets). */
function slope(xs: number[], ys: number[]): number | null {
  if (xs.length < 2) return null;
  const mx = sum(xs) / xs.length;
  const my = sum(ys) / ys.length;
  const den = sum(xs.map((x) => (x - mx) ** 2));
  return den ? sum(xs.map((x, i) => (x - mx) * (ys[i] - my))) / den : null;
}

type MemInfo = ReturnType<typeof memInfo>;

/** The growth of the kernel's own memory since `base`, per idle repl, MB. */
function kernelPerRepl(base: MemInfo, now: MemInfo, count: number) {
  const per = (k: keyof MemInfo) => (count ? round1((now[k] - base[k]) / MB / count) : null);
  return {
    shmemMB: per("shmemKB"),
    slabUnreclaimableMB: per("slabUnreclaimableKB"),
    pageTablesMB: per("pageTablesKB"),
    kernelStackMB: per("kernelStackKB"),
  };
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
};

type Sizes = Pick<ProcMem, "rss" | "pss" | "private">;

/** Medians of RSS, Pss and private memory, MB. */
const sizesMB = (xs: Sizes[]) => ({
  rssMB: medianMB(xs.map((x) => x.rss)),
  pssMB: medianMB(xs.map((x) => x.pss)),
  privateMB: medianMB(xs.map((x) => x.private)),
});

const plus = (a: Sizes, b: Sizes): Sizes => ({
  rss: a.rss + b.rss,
  pss: a.pss + b.pss,
  private: a.private + b.private,
});

/** The per-runner figures at `--repls`: medians over the runners, MB. */
function runnerMemoryReport(ps: ReplProcesses[], pooled: ProcMem[]) {
  const med = (f: (p: ReplProcesses) => number) => medianMB(ps.map(f));
  return {
    runners: ps.length,
    runnerCommand: ps[0] ? cmdline(ps[0].node.pid) : "",
    runnerNode: {
      rssMB: med((p) => p.node.rss),
      rssAnonMB: med((p) => p.node.rssAnon),
      rssFileMB: med((p) => p.node.rssFile),
      pssMB: med((p) => p.node.pss),
      privateMB: med((p) => p.node.private),
      rssMinMaxMB: [mb(Math.min(...ps.map((p) => p.node.rss))), mb(Math.max(...ps.map((p) => p.node.rss)))],
    },
    wrappers: { processes: median(ps.map((p) => p.wrappers.processes)), ...sizesMB(ps.map((p) => p.wrappers)) },
    runnerTree: { what: "runner node + its bwrap wrappers", ...sizesMB(ps.map((p) => plus(p.node, p.wrappers))) },
    terminal: {
      what: "the terminal's processes (bwrap ×2 + bash -l): the user's, not the runner's",
      processes: median(ps.map((p) => p.shells.processes)),
      ...sizesMB(ps.map((p) => p.shells)),
    },
    pasta: {
      what: "the repl's pasta (user-mode network for its private namespace), a child of core",
      ...sizesMB(ps.flatMap((p) => (p.pasta ? [p.pasta] : []))),
    },
    wholeRepl: {
      what: "runner tree + terminal + pasta",
      pssMB: med(replPss),
      privateMB: med(replPrivate),
    },
    pooledIdleRunnerNode: {
      what: "the warm pool's unassigned runners, for comparison",
      count: pooled.length,
      rssMB: medianMB(pooled.map((m) => m.rss)),
      privateMB: medianMB(pooled.map((m) => m.private)),
    },
  };
}

/** Captures what core logs about the local driver (its isolation) and any warnings, from its JSON log. */
function logSink() {
  const driver: string[] = [];
  const warnings: string[] = [];
  let warningCount = 0;
  return {
    driver,
    warnings,
    count: () => warningCount,
    write(line: string) {
      let o: { level?: number; msg?: string; err?: { message?: string } };
      try {
        o = JSON.parse(line);
      } catch {
        return;
      }
      if (o.msg?.startsWith("local driver:")) driver.push(o.msg);
      if ((o.level ?? 0) >= 40) {
        warningCount++;
        if (warnings.length < 20) warnings.push(`${o.msg}${o.err?.message ? `: ${o.err.message}` : ""}`);
      }
    },
  };
}

/** USER_HZ: the unit of /proc's CPU times, 100 on every Linux port Node runs on. */
const TICKS_PER_S = 100;

/**
 * Sits `ms` idle and reports the CPU used meanwhile: by the idle repls' processes (their runners
 * alone too), by this process (core and the bench), and by the whole machine, which other work on
 * it shares with the latency probes.
 */
async function idleCpuOver(dataDir: string, replIds: Set<string>, ms: number) {
  const ps = replProcesses(dataDir, replIds);
  const all = ps.flatMap((p) => p.pids);
  const nodes = ps.map((p) => p.node.pid);
  const ticks = () => ({ all: sum(all.map(cpuTicks)), nodes: sum(nodes.map(cpuTicks)), machine: machineCpu() });
  const before = ticks();
  const coreBefore = process.cpuUsage();
  const t0 = performance.now();
  await sleep(ms);
  const seconds = (performance.now() - t0) / 1000;
  const after = ticks();
  const core = process.cpuUsage(coreBefore);
  const percentOfOneCpu = (t: number) => round1((100 * t) / TICKS_PER_S / seconds);
  return {
    seconds: round1(seconds),
    replsPercentOfOneCpu: percentOfOneCpu(after.all - before.all),
    runnersPercentOfOneCpu: percentOfOneCpu(after.nodes - before.nodes),
    coreProcessPercentOfOneCpu: round1((100 * (core.user + core.system)) / 1e6 / seconds),
    machineBusyPercent: round1(
      (100 * (after.machine.busy - before.machine.busy)) / (after.machine.total - before.machine.total),
    ),
  };
}

function latencySummary(ts: Timing[]) {
  const s = (k: keyof Timing) => {
    const xs = ts.map((t) => t[k]);
    return { p50: round1(percentile(xs, 50)), p99: round1(percentile(xs, 99)) };
  };
  return {
    ...s("totalMs"),
    breakdownMs: { createRepl: s("createMs"), startRepl: s("startMs"), terminal: s("terminalMs") },
  };
}

function stepsFrom(list: string, max: number, memoryRepls: number): number[] {
  const steps = new Set(
    list
      .split(",")
      .map(Number)
      .filter((n) => Number.isInteger(n) && n >= 0 && n < max),
  );
  steps.add(0).add(max);
  if (memoryRepls <= max) steps.add(memoryRepls);
  return [...steps].sort((a, b) => a - b);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      repls: { type: "string", default: "20" },
      max: { type: "string", default: "150" },
      steps: { type: "string", default: "0,20,50,100,150" },
      samples: { type: "string", default: "10" },
      idle: { type: "string", default: "5" },
      "min-available": { type: "string", default: "25" },
      detach: { type: "boolean", default: false },
    },
  });
  const memoryRepls = Number(values.repls);
  const max = Number(values.max);
  const samplesPerStep = Number(values.samples);
  const idleMs = Number(values.idle) * 1000;
  const minAvailable = Number(values["min-available"]) / 100;
  const attach = !values.detach;
  const steps = stepsFrom(values.steps, max, memoryRepls);

  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  // The pool forks dist/runner/pooled.mjs: rebuild it first if its sources changed.
  execFileSync(process.execPath, ["scripts/build.mjs", "--if-stale", "--quiet", "runner"], {
    cwd: root,
    stdio: "inherit",
  });
  // meta.json is written last by a build.
  const runnerBuiltAt = statSync(join(root, "dist/runner/meta.json")).mtime.toISOString();
  const began = performance.now();
  const loadAtStart = loadavg().map(round1);
  const log = logSink();
  const core = await startScratchCore(
    "density",
    { DEVEX_REPL_QUOTA: "10000", DEVEX_RUNNER_IDLE_TIMEOUT: "1h" },
    { level: "info", destination: log },
  );
  const pool = core.e.local!;
  const idle: OpenRepl[] = [];
  const seenPids = new Set<number>();
  const stepRows: Array<Record<string, unknown>> = [];
  let memoryReport: ReturnType<typeof runnerMemoryReport> | undefined;
  let isolationCheck: (ReturnType<typeof confinement> & { distinctUids: number }) | undefined;
  let stoppedBy: string | undefined;
  let probe = 0;
  let shutdownMs = 0;
  let base: MemInfo | undefined;
  const waitForPool = async () => {
    const deadline = Date.now() + 60_000;
    while (pool.poolReady() < 2 && Date.now() < deadline && !stop.signal.aborted) await sleep(20);
  };
  const probeLatency = async (n: number) => {
    const ts: Timing[] = [];
    for (let i = 0; i < n && !stop.signal.aborted; i++) {
      await waitForPool();
      const r = await openRepl(core, `probe-${probe++}`, false);
      ts.push(r.timing);
      await core.api.repls.deleteRepl({ replId: r.replId });
    }
    return ts;
  };

  try {
    await probeLatency(3); // warm-up, unrecorded (as the lifecycle bench)
    for (const step of steps) {
      while (idle.length < step && !stop.signal.aborted) {
        const m = memInfo();
        if (m.availableKB < minAvailable * m.totalKB) {
          stoppedBy = `MemAvailable below ${values["min-available"]}% of MemTotal at ${idle.length} idle repls`;
          break;
        }
        try {
          idle.push(await openRepl(core, `idle-${idle.length}`, attach));
        } catch (err) {
          stoppedBy = `starting idle repl ${idle.length + 1} failed: ${(err as Error).message}`;
          break;
        }
      }
      if (stop.signal.aborted) throw stop.signal.reason;
      const count = idle.length;
      if (stepRows.length && count === stepRows[stepRows.length - 1].idleRepls) break;
      const idleCpu = await idleCpuOver(core.dataDir, new Set(idle.map((r) => r.replId)), idleMs);

      const mem = memInfo();
      base ??= mem;
      const ps = replProcesses(core.dataDir, new Set(idle.map((r) => r.replId)));
      for (const p of ps) for (const pid of p.pids) seenPids.add(pid);
      if (count === memoryRepls || (!memoryReport && stoppedBy && count > 0)) {
        const pooled = records(core.dataDir)
          .filter((r) => r.state === "pool")
          .flatMap((r) => {
            const pid = findProgram(r.pid, "node");
            const m = pid ? procMem(pid) : undefined;
            return m ? [m] : [];
          });
        memoryReport = runnerMemoryReport(ps, pooled);
        isolationCheck = {
          ...confinement(ps[0].node.pid),
          distinctUids: new Set(ps.map((p) => confinement(p.node.pid).uid)).size,
        };
      }
      const ts = await probeLatency(samplesPerStep);
      const dropKB = base.availableKB - mem.availableKB;
      const row = {
        idleRepls: count,
        runnersFound: ps.length,
        memAvailableMB: mb(mem.availableKB),
        memAvailablePercent: round1((100 * mem.availableKB) / mem.totalKB),
        memAvailableDropMB: mb(dropKB),
        memAvailableDropPerReplMB: count ? mb(dropKB / count) : null,
        kernelGrowthPerRepl: kernelPerRepl(base, mem, count),
        perRepl: {
          runnerNodeRssMB: medianMB(ps.map((p) => p.node.rss)),
          runnerNodePrivateMB: medianMB(ps.map((p) => p.node.private)),
          privateMB: medianMB(ps.map(replPrivate)),
          pssMB: medianMB(ps.map(replPss)),
        },
        sumOfReplsPrivateMB: mb(sum(ps.map(replPrivate))),
        coreProcessRssMB: mb(process.memoryUsage().rss / 1024),
        idleCpu,
        loadAverage1m: round1(loadavg()[0]),
        latencyMs: ts.length ? latencySummary(ts) : null,
      };
      stepRows.push(row);
      console.log(JSON.stringify(row));
      if (stoppedBy) break;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    for (const r of idle) r.detach();
    const t = performance.now();
    try {
      await core.close();
    } finally {
      const leftover = [...seenPids].filter((pid) => procMem(pid) !== undefined);
      for (const pid of leftover) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      if (leftover.length) console.error(`killed ${leftover.length} processes core's shutdown left behind`);
      shutdownMs = Math.round(performance.now() - t);
      console.log(`core shutdown with ${idle.length} running repls: ${shutdownMs} ms`);
    }
  }

  const first = stepRows[0]?.latencyMs as ReturnType<typeof latencySummary> | null;
  const limit = first ? 2 * first.p99 : Number.NaN;
  let density = 0;
  let firstOverLimit: number | null = null;
  for (const row of stepRows) {
    const l = row.latencyMs as ReturnType<typeof latencySummary> | null;
    if (!l) continue;
    if (l.p99 >= limit) {
      firstOverLimit = row.idleRepls as number;
      break;
    }
    density = row.idleRepls as number;
  }
  const last = stepRows[stepRows.length - 1];
  const dropPerRepl = last?.memAvailableDropPerReplMB as number | null;
  const dropSlope = slope(
    stepRows.map((r) => r.idleRepls as number),
    stepRows.map((r) => r.memAvailableDropMB as number),
  );
  const privatePerRepl = (last?.perRepl as { privateMB: number | null } | undefined)?.privateMB ?? null;
  const nodeRss = memoryReport?.runnerNode.rssMB ?? null;

  const result = {
    benchmark: "density",
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      core: "start-core.ts in the bench process over a scratch data dir: local driver, warm pool of 2, DEVEX_SANDBOX=auto, DEVEX_EGRESS=auto, local blob store",
      raised: { DEVEX_REPL_QUOTA: 10000, DEVEX_RUNNER_IDLE_TIMEOUT: "1h" },
      runnerBuiltAt,
      isolationFromCoreLog: log.driver,
      runnerConfinement: isolationCheck,
      idleRepl: `node template, one terminal (bash), first byte read, output stream ${attach ? "left attached" : "detached"}, then ${idleMs / 1000} s idle`,
      steps,
      samplesPerStep,
      minAvailablePercent: minAvailable * 100,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg().map(round1),
      durationS: Math.round((performance.now() - began) / 1000),
      coreShutdownMs: { repls: idle.length, ms: shutdownMs, what: "core.close(): persist and stop every runner" },
      coreWarnings: { count: log.count(), first: log.warnings },
    },
    memoryAtRepls: memoryReport,
    steps: stepRows,
    density: {
      stoppedBy: stoppedBy ?? (stepRows.length ? `reached --max ${max}` : "nothing measured"),
      // Idle repls are not free of CPU either; on 2 CPUs that, more than memory, is what the probes feel.
      idleCpuPerReplPercentOfOneCpu: last?.idleRepls
        ? round1(
            ((last.idleCpu as { replsPercentOfOneCpu: number }).replsPercentOfOneCpu / (last.idleRepls as number)) *
              100,
          ) / 100
        : null,
      firstStepP99Ms: first?.p99 ?? null,
      p99LimitMs: round1(limit),
      largestCountUnderLimit: density,
      firstCountOverLimit: firstOverLimit,
      perIdleRepl: {
        atRepls: last?.idleRepls ?? 0,
        memAvailableDropMB: dropPerRepl,
        memAvailableSlopeMB: dropSlope === null ? null : round1(dropSlope),
        privateMB: privatePerRepl,
        kernelMB: last?.kernelGrowthPerRepl ?? null,
        replsPerGBByMemAvailable: dropPerRepl ? round1(1024 / dropPerRepl) : null,
        replsPerGBByMemAvailableSlope: dropSlope ? round1(1024 / dropSlope) : null,
        replsPerGBByPrivate: privatePerRepl ? round1(1024 / privatePerRepl) : null,
      },
    },
    targets: [
      {
        what: `median runner (node process) RSS at ${memoryReport?.runners ?? 0} idle repls`,
        targetMB: NODE_RSS_TARGET_MB,
        measuredMB: nodeRss,
        met: nodeRss !== null && nodeRss <= NODE_RSS_TARGET_MB,
      },
    ],
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/density.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    JSON.stringify({ memoryAtRepls: result.memoryAtRepls, density: result.density, targets: result.targets }, null, 2),
  );
  console.log("wrote bench/results/density.json");
}
