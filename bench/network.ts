/**
 * Network benchmark (`npm run bench -- network [--requests 1000] [--megabytes 100] [--runs 5]`):
 * a repl's egress path against the host's own network, in the same run and the same place, the
 * egress tests' own internet (lib/testing/test-internet.ts): core runs as `npm start` runs it in the
 * namespace H, whose only link leads to W, which serves HTTP. Nothing leaves the machine.
 *
 *  - download: `curl` of 100 MB over HTTP from W, in H (the host) and in repls, in
 *    alternating rounds (median of 5);
 *  - requests: 1,000 sequential short HTTP requests, each on a new connection, by a Node client in H
 *    and in repls: requests/s, and the connect latency (from the name's lookup to the TCP connect)
 *    and request latency p50/p99 (and the slowest request: a lookup the repl's resolver path lost).
 *
 * Repls: one under allow_all (pasta and nft) and one under an allowlist (port 80 through core's
 * HTTP gate). In H the client uses the address directly; in repls it resolves the name through the
 * repl's resolver, as users' programs do. Aim: the allow_all repl's download ≥ 50 % of the host's.
 *
 * Needs root, unshare, nsenter, ip, pasta, nft, openssl and bubblewrap. Writes bench/results/network.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { EgressMode, type EgressPolicy, EgressPolicySchema } from "../gen/devex/core/v1/repl_pb.js";
import type { RunnerClients } from "../lib/client/clients.js";
import { startTestInternet, type TestInternet, testNames } from "../lib/testing/test-internet.js";
import { type CoreInH, execInRepl, startCoreInH } from "../lib/testing/test-internet-core.js";

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const round = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => percentile(xs, 50);

const name = "allowed.test";
const address = testNames[name];

/** A shell command's stdout, in H or in a repl. */
type Shell = (command: string) => Promise<string>;

/**
 * The request client (node -e): `count` GETs of `url`, each on a new connection; with `address`, the
 * name is not looked up but taken to be it. Prints {connect, total} in ms and failures by error code.
 */
const requestClient = `
const http = require("node:http");
const [url, count, address] = process.argv.slice(1);
const lookup = address && ((host, o, cb) => (o && o.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4)));
const agent = new http.Agent({ keepAlive: false });
const connect = [], total = [], errors = {};
const one = () => new Promise((resolve) => {
  const t0 = performance.now();
  let looked = t0;
  const req = http.get(url, { agent, lookup: lookup || undefined }, (res) => {
    res.resume();
    res.on("end", () => { total.push(performance.now() - t0); resolve(); });
  });
  req.on("socket", (s) => {
    s.on("lookup", () => (looked = performance.now()));
    s.on("connect", () => connect.push(performance.now() - looked));
  });
  req.on("error", (e) => { errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1; resolve(); });
});
(async () => {
  const t0 = performance.now();
  for (let i = 0; i < Number(count); i++) await one();
  console.log(JSON.stringify({ connect, total, errors, ms: performance.now() - t0 }));
})();`;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** One download of `bytes` with curl, in MB/s. */
async function downloadOnce(shell: Shell, url: string, extra: string, bytes: number): Promise<number> {
  const out = await shell(`curl -sS -o /dev/null -w '%{size_download} %{time_total}' ${extra} ${url}/bytes/${bytes}`);
  const [size, seconds] = out.trim().split(" ").map(Number) as [number, number];
  if (size !== bytes) throw new Error(`download got ${size} of ${bytes} bytes: ${out}`);
  return bytes / 1024 / 1024 / seconds;
}

async function requests(shell: Shell, url: string, count: number, fixedAddress?: string) {
  const args = [url, String(count), ...(fixedAddress ? [fixedAddress] : [])].map(quote).join(" ");
  const out = await shell(`node -e ${quote(requestClient)} ${args}`);
  const r = JSON.parse(out) as { connect: number[]; total: number[]; errors: Record<string, number>; ms: number };
  return {
    requestsPerSecond: round((r.total.length / r.ms) * 1000),
    failed: r.errors,
    connectMs: { p50: round(percentile(r.connect, 50)), p99: round(percentile(r.connect, 99)) },
    requestMs: {
      p50: round(percentile(r.total, 50)),
      p99: round(percentile(r.total, 99)),
      // A lost lookup shows here (glibc waits 5 s before asking again), not in p99.
      max: round(Math.max(...r.total)),
    },
  };
}

async function startRepl(c: CoreInH, label: string, egress: EgressPolicy) {
  const created = await c.core.repls.createRepl({ name: label, template: "node", egress });
  const started = await c.core.repls.startRepl({ replId: created.repl!.replId });
  return c.runner(started.runner!);
}

function replShell(runner: RunnerClients): Shell {
  return async (command) => {
    const r = await execInRepl(runner, command, 600);
    if (r.exitCode !== 0) throw new Error(`in the repl: ${command.slice(0, 80)}… failed (${r.exitCode}): ${r.stderr}`);
    return r.stdout;
  };
}

function hostShell(net: TestInternet): Shell {
  return async (command) => {
    const r = await net.inH("bash", ["-c", command], { timeoutMs: 600_000, env: process.env });
    if (r.code !== 0) throw new Error(`in H: ${command.slice(0, 80)}… failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
}

async function measure(net: TestInternet, c: CoreInH, o: { megabytes: number; runs: number; requests: number }) {
  const url = `http://${name}`;
  const paths: Record<string, { shell: Shell; resolve: string; address?: string }> = {
    host: { shell: hostShell(net), resolve: `--resolve ${name}:80:${address}`, address },
    allow_all: {
      shell: replShell(await startRepl(c, "bench-open", create(EgressPolicySchema, { mode: EgressMode.ALLOW_ALL }))),
      resolve: "",
    },
    allowlist: {
      shell: replShell(
        await startRepl(
          c,
          "bench-listed",
          create(EgressPolicySchema, { mode: EgressMode.ALLOWLIST, allowDomains: [name] }),
        ),
      ),
      resolve: "",
    },
  };
  // Downloads in rounds, each path once per round, so the machine's other load falls on all alike.
  const rates: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  for (let r = 0; r < o.runs; r++)
    for (const [label, p] of Object.entries(paths))
      rates[label]!.push(await downloadOnce(p.shell, url, p.resolve, o.megabytes * 1024 * 1024));
  const out: Record<string, unknown> = {};
  for (const [label, p] of Object.entries(paths)) {
    out[label] = {
      download: { MBps: round(median(rates[label]!)), runsMBps: rates[label]!.map(round) },
      requests: await requests(p.shell, `${url}/`, o.requests, p.address),
    };
    console.log(label, JSON.stringify(out[label]));
  }
  return out as Record<string, { download: { MBps: number }; requests: { requestsPerSecond: number } }>;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: "string", default: "1000" },
      megabytes: { type: "string", default: "100" },
      runs: { type: "string", default: "5" },
    },
  });
  const o = { requests: Number(values.requests), megabytes: Number(values.megabytes), runs: Number(values.runs) };
  const loadAtStart = loadavg()[0]!;
  const net = await startTestInternet();
  let c: CoreInH | undefined;
  try {
    c = await startCoreInH(net, { env: { DEVEX_LOG_LEVEL: "warn" } });
    const paths = await measure(net, c, o);
    const ratio = (label: string) => ({
      download: round(paths[label]!.download.MBps / paths.host!.download.MBps),
      requestsPerSecond: round(paths[label]!.requests.requestsPerSecond / paths.host!.requests.requestsPerSecond),
    });
    const result = {
      date: new Date().toISOString(),
      cpus: cpus().length,
      node: process.version,
      load: { start: round(loadAtStart), end: round(loadavg()[0]!) },
      setup:
        "core (main.ts, DEVEX_SANDBOX=bwrap, DEVEX_EGRESS=pasta) in a test network namespace H whose only link " +
        "(veth) leads to W, which serves HTTP; host = a client in H itself, repls = clients inside repls",
      download: { megabytes: o.megabytes, runs: o.runs },
      requests: { count: o.requests, connection: "new per request" },
      paths,
      ratioToHost: { allow_all: ratio("allow_all"), allowlist: ratio("allowlist") },
      target: { allow_allDownloadRatio: 0.5 },
    };
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(new URL("./results/network.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result.ratioToHost));
    console.log("wrote bench/results/network.json");
  } finally {
    await c?.close();
    await net.close();
  }
}
