/**
 * Core benchmark: unary ReplService.GetRepl and ListRepls on core backed by a real redis-server,
 * authenticated with an API token, at 50 concurrent callers for ~10 s each, over HTTP/1.1 Connect
 * (JSON) and h2c gRPC (binary). Baseline in the same run: a bare GetRepl handler returning a constant
 * on the same server kit (no auth, no store) — the floor set by the kit and the protocols.
 *
 * The servers run on the main thread; the load comes from a worker thread (its own event loop and
 * core) speaking the wire protocols directly with node:http / node:http2, so the client costs little.
 * Writes bench/results/core.json.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { ReplSchema, ReplService, ReplStatus } from "../gen/devex/core/v1/repl_pb.js";
import { createLocalBlobStore } from "../lib/blob/local.js";
import { coreClientsFor } from "../lib/client/node.js";
import { createLogger } from "../lib/kit/log.js";
import { startServer } from "../lib/kit/server.js";
import { createTokenSigner, generateSigningKey } from "../lib/kit/tokens.js";
import { findProgram } from "../lib/testing/programs.js";
import { startRedis } from "../lib/testing/redis.js";
import { issueApiToken } from "../services/core/src/auth/secrets.js";
import { createCore } from "../services/core/src/core.js";
import { createUnconfiguredDriver } from "../services/core/src/driver/driver.js";
import { createRedisStore } from "../services/core/src/state/redis.js";

const CONCURRENCY = 50;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);
const WARMUP_MS = 1000;
const TARGET_RPS = 3000;

interface Case {
  name: string;
  server: "baseline" | "core";
  rpc: "GetRepl" | "ListRepls";
  protocol: "connect-http1.1-json" | "grpc-h2c";
  url: string;
  token?: string;
  replId: string;
}

interface Result extends Omit<Case, "url" | "token" | "replId"> {
  requests: number;
  errors: number;
  rps: number;
  p50ms: number;
  p99ms: number;
}

// The load generator: plain JavaScript run in a worker. Connect unary = POST with a JSON body;
// gRPC = HTTP/2 POST of a length-prefixed protobuf message (GetReplRequest/ListReplsRequest encoded
// by hand: field 1 string / empty message).
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const http = require("node:http");
const http2 = require("node:http2");
const { url, token, rpc, protocol, replId, concurrency, durationMs, warmupMs } = workerData;
const path = "/devex.core.v1.ReplService/" + rpc;
const headers = token ? { authorization: "Bearer " + token } : {};
const jsonBody = Buffer.from(rpc === "GetRepl" ? JSON.stringify({ replId }) : "{}");
const id = Buffer.from(replId);
const pb = rpc === "GetRepl" ? Buffer.concat([Buffer.from([0x0a, id.length]), id]) : Buffer.alloc(0);
const grpcBody = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), pb]);
grpcBody.writeUInt32BE(pb.length, 1);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const u = new URL(url);
const sessions = [];
function callHttp1() {
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: "POST", agent,
      headers: { ...headers, "content-type": "application/json", "content-length": jsonBody.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
      res.on("error", () => resolve(false));
    });
    req.on("error", () => resolve(false));
    req.end(jsonBody);
  });
}
function callGrpc(n) {
  return new Promise((resolve) => {
    const s = sessions[n % sessions.length].request({ ":method": "POST", ":path": path, "content-type": "application/grpc",
      te: "trailers", ...headers });
    let status = -1;
    s.on("trailers", (t) => { status = Number(t["grpc-status"]); });
    s.on("response", (h) => { if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]); });
    s.on("data", () => {});
    s.on("end", () => resolve(status === 0));
    s.on("error", () => resolve(false));
    s.end(grpcBody);
  });
}
(async () => {
  if (protocol === "grpc-h2c") {
    for (let i = 0; i < 5; i++) sessions.push(http2.connect(url));
  }
  const call = protocol === "grpc-h2c" ? callGrpc : callHttp1;
  const lat = [];
  let errors = 0;
  const start = Date.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  async function loop(_, n) {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      const ok = await call(n);
      const t1 = process.hrtime.bigint();
      if (Date.now() < measureFrom) continue;
      if (ok) lat.push(Number(t1 - t0) / 1e6); else errors++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (Date.now() - measureFrom) / 1000;
  for (const s of sessions) s.close();
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0;
  parentPort.postMessage({ requests: lat.length, errors, rps: lat.length / elapsed, p50ms: q(0.5), p99ms: q(0.99) });
})();
`;

function load(c: Case): Promise<Omit<Result, "name" | "server" | "rpc" | "protocol">> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { ...c, concurrency: CONCURRENCY, durationMs: DURATION_MS, warmupMs: WARMUP_MS },
    });
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

export async function run(): Promise<void> {
  const program = findProgram("redis-server");
  if (!program) throw new Error("redis-server is not installed");
  const log = createLogger("core", { level: "silent" });
  const redis = await startRedis(program);
  const dir = await mkdtemp(join(tmpdir(), "devex-bench-core-"));
  const state = await createRedisStore({ url: redis.url });
  const blobs = createLocalBlobStore(join(dir, "blobs"));
  const core = await createCore({
    log,
    state,
    blobs,
    driver: createUnconfiguredDriver(),
    signer: createTokenSigner(generateSigningKey().privateKeyPem),
    templatesDir: new URL("../templates", import.meta.url).pathname,
    port: 0,
    cookieSecret: "bench-cookie-secret",
    secretsKey: randomBytes(32),
    quota: 20,
  });
  const { secret } = await issueApiToken(state, "bench", "bench");
  const { repls } = coreClientsFor(core.url, { token: secret });
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    ids.push((await repls.createRepl({ name: `bench ${i}`, template: "node" })).repl!.replId);
  }

  const constant = create(ReplSchema, {
    replId: ids[0],
    name: "bench 0",
    template: "node",
    owner: "bench",
    status: ReplStatus.STOPPED,
    createTime: timestampNow(),
    updateTime: timestampNow(),
  });
  const baseline = await startServer({
    name: "baseline",
    port: 0,
    log,
    routes(router) {
      router.service(ReplService, { getRepl: async () => ({ repl: constant }) });
    },
  });

  const cases: Case[] = [];
  for (const protocol of ["connect-http1.1-json", "grpc-h2c"] as const) {
    cases.push({
      name: `baseline GetRepl ${protocol}`,
      server: "baseline",
      rpc: "GetRepl",
      protocol,
      url: baseline.url,
      replId: ids[0],
    });
    for (const rpc of ["GetRepl", "ListRepls"] as const) {
      cases.push({
        name: `core ${rpc} ${protocol}`,
        server: "core",
        rpc,
        protocol,
        url: core.url,
        token: secret,
        replId: ids[0],
      });
    }
  }

  const only = process.env.BENCH_CASES ? new RegExp(process.env.BENCH_CASES) : undefined;
  const results: Result[] = [];
  try {
    for (const c of cases.filter((x) => !only || only.test(x.name))) {
      const r = await load(c);
      const result: Result = {
        name: c.name,
        server: c.server,
        rpc: c.rpc,
        protocol: c.protocol,
        requests: r.requests,
        errors: r.errors,
        rps: round(r.rps, 0),
        p50ms: round(r.p50ms),
        p99ms: round(r.p99ms),
      };
      results.push(result);
      console.log(
        `${c.name.padEnd(40)} ${String(result.rps).padStart(7)} req/s  p50 ${result.p50ms} ms  p99 ${result.p99ms} ms  errors ${result.errors}`,
      );
    }
  } finally {
    await baseline.close();
    await core.close();
    await state.close();
    await redis.dispose();
    await rm(dir, { recursive: true, force: true });
  }

  const coreResults = results.filter((r) => r.server === "core");
  const output = {
    benchmark: "core",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    setup: {
      concurrency: CONCURRENCY,
      durationMs: DURATION_MS,
      warmupMs: WARMUP_MS,
      store: "redis-server (real, loopback)",
      auth: "API token (SHA-256 lookup in Redis per call)",
      replsOfCaller: ids.length,
      loadGenerator: "worker thread, node:http keep-alive (50 sockets) / five node:http2 sessions (10 streams each)",
      baseline: "bare GetRepl handler returning a constant on the same server kit (no auth, no store)",
    },
    targetRps: TARGET_RPS,
    /** Per protocol: every core case at or above the target without errors. */
    meetsTarget: Object.fromEntries(
      [...new Set(coreResults.map((r) => r.protocol))].map((p) => [
        p,
        coreResults.filter((r) => r.protocol === p).every((r) => r.rps >= TARGET_RPS && r.errors === 0),
      ]),
    ),
    results,
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/core.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  console.log("wrote bench/results/core.json");
}

export default run;
