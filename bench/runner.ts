/**
 * Runner terminal benchmark: the same workloads through these paths, in one run:
 *   raw  — node-pty in this process (the limit the targets are set against),
 *   grpc — a grpc-js client over h2c doing bidi TerminalService.Attach to a runner child process,
 *   ws   — a `ws` client on the runner's WebSocket bridge,
 * and two floors (bench/pty-relay.ts), the least any networked terminal costs on this machine:
 *   tcp-floor — a separate process relaying PTY bytes over TCP, nothing else (the process hop),
 *   h2-floor  — the same over one node:http2 stream (the hop plus Node's HTTP/2, under any gRPC
 *               server in Node),
 * and grpcjs: the runner's sessions behind @grpc/grpc-js instead of connect-node (the issue's
 * fallback; bench/grpcjs-terminal-server.ts), with the same grpc-js client as `grpc`; and
 *   grpc-core, ws-core — `grpc` and `ws` through core's runner proxy (bench/core-proxy.ts, a
 *               process of its own: the repl named in the devex-repl-id header, and the
 *               /<replId>/ prefix), which the embedded setup puts in front of every runner;
 *   wetty — a peer web terminal (npm `wetty`, socket.io; bench/wetty.ts), installed on first use.
 * Each path also reports the CPU seconds its server side (the runner, the relay, or this process
 * for raw) and its client spent on the throughput rounds: on a two-vCPU machine the shell, the
 * kernel's tty work, the server and the client share two cores, so CPU per byte is what a path
 * can improve, and MB/s follows it.
 * Workloads: output throughput of `head -c <N> /dev/zero | base64`, keystroke echo latency over
 * 2,000 rounds through `stty raw -echo; cat`, and the runner's RSS per idle terminal.
 *
 * Echo latency is reported twice per path: `cold`, the first 2,000 rounds on a fresh terminal
 * (after 100), and `warm`, 2,000 rounds after WARMUP_ROUNDS more. A fresh runner process spends its
 * first ~10,000 round trips compiling the hot paths (TurboFan on background threads, competing with
 * the shell, the runner and the client for this machine's two vCPUs), which triples p99 for a few
 * seconds; a runner serving a user is long-lived, so the targets are judged on `warm`. Throughput
 * starts with one unrecorded round per path for the same reason.
 * Writes bench/results/runner.json.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as connectH2 } from "node:http2";
import { connect as connectTcp } from "node:net";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { spawn as spawnPty } from "@lydell/node-pty";
import WebSocket from "ws";
import { type ChildRunner, startChildRunner } from "../lib/testing/child-runner.js";
import { grpcClient, unary } from "../lib/testing/grpc-client.js";
import { startWetty, WETTY_VERSION } from "./wetty.js";

const MB = 1024 * 1024;
const ROUNDS = 2000;
const ROUNDS_THROUGHPUT = 5;
/** Echo rounds between the cold and the warm measurement. */
const WARMUP_ROUNDS = 10_000;

interface Sink {
  /** Sends input bytes. */
  write(data: Buffer): void;
  /** Called with each output chunk. */
  onData(f: (d: Buffer) => void): void;
  /** Resolves when the terminal's process exited and all output arrived. */
  exited: Promise<void>;
  close(): void;
}

type Path = (command: string[]) => Promise<Sink>;

/** Output listeners that keep what arrives before the first listener (replay right after attach). */
function outputFanout() {
  const listeners: Array<(d: Buffer) => void> = [];
  const early: Buffer[] = [];
  return {
    emit(d: Buffer) {
      if (listeners.length === 0) early.push(d);
      for (const l of listeners) l(d);
    },
    on(f: (d: Buffer) => void) {
      listeners.push(f);
      for (const d of early.splice(0)) f(d);
    },
  };
}

function rawPath(): Path {
  return async (command) => {
    const pty = spawnPty(command[0], command.slice(1), { cols: 80, rows: 24, encoding: null, env: process.env });
    const out = outputFanout();
    pty.onData((d) => out.emit(d as unknown as Buffer));
    const exited = new Promise<void>((r) => pty.onExit(() => r()));
    return {
      write: (d) => pty.write(d as unknown as string),
      onData: (f) => out.on(f),
      exited,
      close: () => pty.kill("SIGKILL"),
    };
  };
}

/** Any repl id: core's proxy in the bench forwards every one to the bench's runner. */
const PROXIED_REPL = "r000000000000";

function grpcPath(r: { url: string; token: string }, headers: Record<string, string> = {}): Path {
  const client = grpcClient(r.url, "TerminalService", r.token, headers);
  return async (command) => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", { command });
    const call: grpc.ClientDuplexStream<object, Record<string, unknown>> = client.attach();
    const out = outputFanout();
    let attached!: () => void;
    const ready = new Promise<void>((r) => (attached = r));
    const exited = new Promise<void>((resolve, reject) => {
      call.on("data", (f) => {
        if (f.frame === "output") out.emit(f.output as Buffer);
        else if (f.frame === "attached") attached();
        else if (f.frame === "exit") resolve();
      });
      call.on("error", reject);
    });
    exited.catch(() => {});
    call.write({ start: { terminalId: res.terminal.terminalId, replay: true } });
    await ready;
    return {
      write: (d) => call.write({ input: d }),
      onData: (f) => out.on(f),
      exited,
      close: () => {
        call.cancel();
        void unary(client, "closeTerminal", { terminalId: res.terminal.terminalId }).catch(() => {});
      },
    };
  };
}

/** The WebSocket bridge at `base` (the runner's URL, or core's /<replId> route to it). */
function wsPath(r: { url: string; token: string }, base = r.url): Path {
  const client = grpcClient(r.url, "TerminalService", r.token);
  return async (command) => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", { command });
    const ws = new WebSocket(`${base.replace("http", "ws")}/ws/terminals/${res.terminal.terminalId}?replay=1`, [
      "devex.terminal.v1",
      `bearer.${r.token}`,
    ]);
    const out = outputFanout();
    let attached!: () => void;
    const ready = new Promise<void>((r) => (attached = r));
    const exited = new Promise<void>((resolve) => {
      ws.on("message", (data: Buffer, isBinary) => {
        if (isBinary) out.emit(data);
        else if (data.includes('"attached"')) attached();
        else if (data.includes('"exit"')) resolve();
      });
    });
    await ready;
    return {
      write: (d) => ws.send(d),
      onData: (f) => out.on(f),
      exited,
      close: () => {
        ws.close();
        void unary(client, "closeTerminal", { terminalId: res.terminal.terminalId }).catch(() => {});
      },
    };
  };
}

interface Child {
  /** What the child printed after "listening on ". */
  address: string;
  pid: number;
  close(): void;
}

/** Starts a bench helper (`bench/<script>`) under tsx, as the runner runs, and waits for "listening on …". */
async function startChild(script: string, ...args: string[]): Promise<Child> {
  const file = path.resolve(import.meta.dirname, script);
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /listening on (\S+)/.exec(buf);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  child.stdout!.resume();
  return { address, pid: child.pid!, close: () => child.kill("SIGTERM") };
}

function tcpFloorPath(relay: Child): Path {
  return async (command) => {
    const socket = connectTcp({ port: Number(relay.address), host: "127.0.0.1", noDelay: true });
    await new Promise((r) => socket.once("connect", r));
    socket.write(`${JSON.stringify(command)}\n`);
    const out = outputFanout();
    socket.on("data", (d: Buffer) => out.emit(d));
    const exited = new Promise<void>((r) => socket.once("end", () => r()));
    return { write: (d) => socket.write(d), onData: (f) => out.on(f), exited, close: () => socket.destroy() };
  };
}

function h2FloorPath(relay: Child): Path {
  // One session, as the grpc-js client keeps one, with the same 8 MiB receive window.
  const session = connectH2(`http://127.0.0.1:${relay.address}`, { settings: { initialWindowSize: 8 * MB } });
  session.on("connect", () => session.setLocalWindowSize(8 * MB));
  return async (command) => {
    const stream = session.request({ ":method": "POST", ":path": "/", "x-command": JSON.stringify(command) });
    const out = outputFanout();
    stream.on("data", (d: Buffer) => out.emit(d));
    const exited = new Promise<void>((r) => stream.once("end", () => r()));
    await new Promise((r) => stream.once("response", r));
    return { write: (d) => stream.write(d), onData: (f) => out.on(f), exited, close: () => stream.close() };
  };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** MB/s of `head -c <bytes> /dev/zero | base64`, started by a newline once attached. */
async function throughput(
  open: Path,
  bytes: number,
): Promise<{ mbPerSec: number; outputBytes: number; seconds: number }> {
  const sink = await open(["bash", "-c", `stty -echo; read; head -c ${bytes} /dev/zero | base64`]);
  let n = 0;
  sink.onData((d) => (n += d.length));
  await new Promise((r) => setTimeout(r, 200));
  n = 0;
  const t0 = performance.now();
  sink.write(Buffer.from("\n"));
  await sink.exited;
  const seconds = (performance.now() - t0) / 1000;
  sink.close();
  return { mbPerSec: n / MB / seconds, outputBytes: n, seconds };
}

interface Latency {
  p50: number;
  p99: number;
  mean: number;
}

function latency(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: q(0.5), p99: q(0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

/**
 * Keystroke echo latency through `stty raw -echo; cat`: one byte out, the same byte back. `cold`:
 * ROUNDS rounds after 100; `warm`: ROUNDS rounds after WARMUP_ROUNDS more (see the header).
 */
async function echo(open: Path): Promise<{ cold: Latency; warm: Latency }> {
  const sink = await open(["bash", "-c", "stty raw -echo; echo ready; exec cat"]);
  let waiting: ((d: Buffer) => void) | undefined;
  let seen = "";
  sink.onData((d) => {
    seen += d.toString("latin1");
    waiting?.(d);
  });
  const readyBy = Date.now() + 10_000;
  while (!seen.includes("ready")) {
    if (Date.now() > readyBy) throw new Error("the echo terminal never printed ready");
    await new Promise((r) => setTimeout(r, 10));
  }
  seen = "";
  await new Promise((r) => setTimeout(r, 50));
  let round = 0;
  const rounds = async (n: number): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < n; i++, round++) {
      const ch = String.fromCharCode(97 + (round % 26));
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`echo round ${round} got no answer in 5 s`)), 5000);
        waiting = (d) => {
          if (!d.toString("latin1").includes(ch)) return;
          clearTimeout(timer);
          resolve();
        };
        sink.write(Buffer.from(ch));
      });
      times.push(performance.now() - t0);
    }
    return times;
  };
  await rounds(100);
  const cold = latency(await rounds(ROUNDS));
  await rounds(WARMUP_ROUNDS);
  const warm = latency(await rounds(ROUNDS));
  waiting = undefined;
  sink.close();
  return { cold, warm };
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Runner RSS growth per idle bash terminal, and the shells' own RSS. */
async function idleTerminals(r: ChildRunner, token: string, count: number) {
  const client = grpcClient(r.url, "TerminalService", token);
  await new Promise((res) => setTimeout(res, 500));
  const before = r.rss();
  const pids: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await unary<{ terminal: { pid: number } }>(client, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
    });
    pids.push(res.terminal.pid);
  }
  await new Promise((res) => setTimeout(res, 1500));
  const after = r.rss();
  const shells = pids.map(rssOf);
  return {
    terminals: count,
    runnerRssBeforeMB: before / MB,
    runnerRssAfterMB: after / MB,
    runnerMBPerTerminal: (after - before) / count / MB,
    shellMBPerTerminal: shells.reduce((a, b) => a + b, 0) / count / MB,
  };
}

type Throughput = Awaited<ReturnType<typeof throughput>> & {
  serverCpuS: number;
  clientCpuS: number;
  proxyCpuS: number;
};

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function run(args: string[]): Promise<void> {
  const mb = Number(args.find((a) => a.startsWith("--mb="))?.slice(5) ?? 200);
  const bytes = mb * MB;
  const loadAtStart = loadavg();
  const runner = await startChildRunner({ DEVEX_RUNNER_MAX_TERMINALS: "64" });
  const tcpRelay = await startChild("pty-relay.ts", "tcp");
  const h2Relay = await startChild("pty-relay.ts", "h2");
  const grpcjs = await startChild("grpcjs-terminal-server.ts");
  const core = await startChild("core-proxy.ts", runner.url);
  const wetty = await startWetty().catch((e: Error) => {
    console.log(`wetty is left out: ${e.message.split("\n")[0]}`);
    return undefined;
  });
  // A token that outlives the whole run (the default expires in minutes).
  const access = { url: runner.url, token: runner.mint({}, 4 * 3600) };
  try {
    const paths: Record<string, { open: Path; serverPid: number; proxyPid?: number }> = {
      raw: { open: rawPath(), serverPid: process.pid },
      "tcp-floor": { open: tcpFloorPath(tcpRelay), serverPid: tcpRelay.pid },
      "h2-floor": { open: h2FloorPath(h2Relay), serverPid: h2Relay.pid },
      grpc: { open: grpcPath(access), serverPid: runner.pid },
      "grpc-core": {
        open: grpcPath({ url: core.address, token: access.token }, { "devex-repl-id": PROXIED_REPL }),
        serverPid: runner.pid,
        proxyPid: core.pid,
      },
      ws: { open: wsPath(access), serverPid: runner.pid },
      "ws-core": { open: wsPath(access, `${core.address}/${PROXIED_REPL}`), serverPid: runner.pid, proxyPid: core.pid },
      grpcjs: { open: grpcPath({ url: grpcjs.address, token: "" }), serverPid: grpcjs.pid },
      ...(wetty && { wetty: { open: (command: string[]) => wetty.open(command), serverPid: wetty.pid } }),
    };
    const measure = async (name: string, n: number): Promise<Throughput> => {
      const { open, serverPid, proxyPid } = paths[name];
      const s0 = cpuSeconds(serverPid);
      const c0 = cpuSeconds(process.pid);
      const p0 = proxyPid ? cpuSeconds(proxyPid) : 0;
      const tp = await throughput(open, n);
      const serverCpuS = cpuSeconds(serverPid) - s0;
      // For raw, this process is the server and there is no separate client.
      const clientCpuS = serverPid === process.pid ? 0 : cpuSeconds(process.pid) - c0;
      const proxyCpuS = proxyPid ? cpuSeconds(proxyPid) - p0 : 0;
      return { ...tp, serverCpuS, clientCpuS, proxyCpuS };
    };
    for (const name of Object.keys(paths)) {
      const tp = await measure(name, Math.min(bytes, 50 * MB));
      console.log(`warm-up ${name}: ${tp.mbPerSec.toFixed(1)} MB/s (not recorded)`);
    }
    // Throughput rounds interleave the paths, so load from other processes on the machine hits
    // them alike; the median of the rounds is reported.
    const samples: Record<string, Throughput[]> = Object.fromEntries(Object.keys(paths).map((n) => [n, []]));
    for (let round = 1; round <= ROUNDS_THROUGHPUT; round++) {
      for (const name of Object.keys(paths)) {
        const tp = await measure(name, bytes);
        samples[name].push(tp);
        console.log(
          `round ${round} ${name}: ${tp.mbPerSec.toFixed(1)} MB/s, server ${tp.serverCpuS.toFixed(2)} s CPU, client ${tp.clientCpuS.toFixed(2)} s CPU`,
        );
      }
    }
    const echoes: Record<string, Awaited<ReturnType<typeof echo>>> = {};
    for (const [name, { open }] of Object.entries(paths)) {
      echoes[name] = await echo(open);
      for (const [phase, l] of Object.entries(echoes[name])) {
        console.log(
          `${name}: ${phase} echo p50 ${l.p50.toFixed(3)} ms, p99 ${l.p99.toFixed(3)} ms over ${ROUNDS} rounds`,
        );
      }
    }
    console.log("idle terminals…");
    const idle = await idleTerminals(runner, access.token, 20);

    const summary = (n: string) => {
      const xs = samples[n];
      // Medians, as for throughput: a neighbour's burst on this shared machine inflates one round.
      const perGB = (cpu: (x: Throughput) => number) => median(xs.map((x) => cpu(x) / (x.outputBytes / 1024 ** 3)));
      return {
        throughputMBps: median(xs.map((x) => x.mbPerSec)),
        throughputSamplesMBps: xs.map((x) => x.mbPerSec),
        outputBytes: xs[0].outputBytes,
        serverCpuSecondsPerGB: perGB((x) => x.serverCpuS),
        serverCpuSamplesSecondsPerGB: xs.map((x) => x.serverCpuS / (x.outputBytes / 1024 ** 3)),
        clientCpuSecondsPerGB: perGB((x) => x.clientCpuS),
        proxyCpuSecondsPerGB: perGB((x) => x.proxyCpuS),
        echoMs: echoes[n],
      };
    };
    const results = Object.fromEntries(Object.keys(paths).map((n) => [n, summary(n)]));
    const versus = (n: string, base: string) => ({
      throughputRatio: results[n].throughputMBps / results[base].throughputMBps,
      echoP50DeltaMs: results[n].echoMs.warm.p50 - results[base].echoMs.warm.p50,
      echoP99Ratio: results[n].echoMs.warm.p99 / results[base].echoMs.warm.p99,
      coldEchoP50DeltaMs: results[n].echoMs.cold.p50 - results[base].echoMs.cold.p50,
      coldEchoP99Ratio: results[n].echoMs.cold.p99 / results[base].echoMs.cold.p99,
    });
    const ratios = {
      grpc: versus("grpc", "raw"),
      ws: versus("ws", "raw"),
      "tcp-floor": versus("tcp-floor", "raw"),
      "h2-floor": versus("h2-floor", "raw"),
      grpcjs: versus("grpcjs", "raw"),
      grpcVsH2Floor: versus("grpc", "h2-floor"),
      grpcVsGrpcjs: versus("grpc", "grpcjs"),
      wsVsTcpFloor: versus("ws", "tcp-floor"),
      grpcCoreVsGrpc: versus("grpc-core", "grpc"),
      wsCoreVsWs: versus("ws-core", "ws"),
      grpcCpuVsH2FloorCpu: results.grpc.serverCpuSecondsPerGB / results["h2-floor"].serverCpuSecondsPerGB,
      ...(wetty && { grpcVsWetty: versus("grpc", "wetty"), wsVsWetty: versus("ws", "wetty") }),
    };
    const meets = (r: ReturnType<typeof versus>) => ({
      throughput85: r.throughputRatio >= 0.85,
      echoP50: r.echoP50DeltaMs <= 0.3,
      echoP99: r.echoP99Ratio <= 2,
    });
    const out = {
      benchmark: "runner",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      workload: {
        throughput: `head -c ${mb}M /dev/zero | base64 in a PTY; median of ${ROUNDS_THROUGHPUT} interleaved rounds after one unrecorded ${Math.min(mb, 50)}M round per path (MB/s and CPU per GB alike)`,
        loadAverageAtStart: loadAtStart,
        echo: `one byte through stty raw -echo; cat: cold = ${ROUNDS} rounds after 100, warm = ${ROUNDS} rounds after ${WARMUP_ROUNDS} more; targets on warm`,
        idle: "20 idle bash --norc --noprofile terminals",
        wetty: wetty
          ? `wetty ${WETTY_VERSION} (npm), socket.io over WebSocket`
          : "not run: it could not be installed or started",
      },
      ...results,
      ratios,
      idle,
      targets: {
        grpc: meets(ratios.grpc),
        ws: meets(ratios.ws),
        // The same targets applied to the floors (what no design on this machine could beat) and
        // to the grpc-js variant (the fallback).
        "tcp-floor": meets(ratios["tcp-floor"]),
        "h2-floor": meets(ratios["h2-floor"]),
        grpcjs: meets(ratios.grpcjs),
        idleUnder5MB: idle.runnerMBPerTerminal <= 5,
        // Issue 18's: each path near its floor, core's proxy near direct, the runner's CPU per GB
        // on the gRPC path near the h2 floor's, and warm echo p99 within 2× raw on both paths.
        grpcThroughput90PctOfH2Floor: ratios.grpcVsH2Floor.throughputRatio >= 0.9,
        wsThroughput90PctOfTcpFloor: ratios.wsVsTcpFloor.throughputRatio >= 0.9,
        grpcThroughCore85PctOfDirect: ratios.grpcCoreVsGrpc.throughputRatio >= 0.85,
        wsThroughCore85PctOfDirect: ratios.wsCoreVsWs.throughputRatio >= 0.85,
        grpcCpuPerGBAtMost125PctOfH2Floor: ratios.grpcCpuVsH2FloorCpu <= 1.25,
        grpcWarmEchoP99Within2xRaw: ratios.grpc.echoP99Ratio <= 2,
        wsWarmEchoP99Within2xRaw: ratios.ws.echoP99Ratio <= 2,
        // Ahead of the peer: more throughput and a lower warm echo p50.
        ...(ratios.grpcVsWetty &&
          ratios.wsVsWetty && {
            grpcAheadOfWetty: ratios.grpcVsWetty.throughputRatio > 1 && ratios.grpcVsWetty.echoP50DeltaMs < 0,
            wsAheadOfWetty: ratios.wsVsWetty.throughputRatio > 1 && ratios.wsVsWetty.echoP50DeltaMs < 0,
          }),
      },
    };
    const file = path.resolve(import.meta.dirname, "results/runner.json");
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(JSON.stringify({ ratios, idle, targets: out.targets }, null, 2));
    console.log(`wrote ${file}`);
  } finally {
    tcpRelay.close();
    h2Relay.close();
    grpcjs.close();
    core.close();
    wetty?.close();
    await runner.close();
  }
}
