/**
 * Lifecycle benchmark (`npm run bench -- lifecycle [--repls 50] [--skip-sync] [--skip-start]`):
 *
 * 1. create → start → first terminal byte, over 50 repls from the small `node` template, on the
 *    embedded setup as `npm start` builds it (core + local driver with its warm pool + bwrap sandbox,
 *    local blob store), through the public API over one origin (Connect/HTTP 1.1 via core's proxy).
 *    Each repl is stopped and deleted after its measurement and the next one starts once the pool is
 *    warm again: this is the steady-state latency of one user opening a repl. Target p50 ≤ 60 ms,
 *    p99 ≤ 150 ms.
 * 2. Persist (what a stop uploads) and restore (what a start downloads) of a 2,000 × 2 KB and a
 *    20 × 5 MB workspace against s3rver, side by side with `aws s3 cp --recursive` and
 *    `rclone copy --transfers 32` on the same data and the same s3rver; plus a re-persist with nothing
 *    changed, and the whole driver path (start = restore + runner; stop after 10 edits = persist +
 *    drain + persist + teardown). Targets: Devex ≤ 1/3 of rclone's time for the 2,000-file case; re-persist ≤ 0.3 s.
 *
 * Writes bench/results/lifecycle.json.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createS3BlobStore } from "../lib/blob/s3.js";
import type { BlobStore } from "../lib/blob/store.js";
import { coreClientsFor, runnerClientsFor } from "../lib/client/node.js";
import { createLogger } from "../lib/kit/log.js";
import { sleep } from "../lib/kit/sleep.js";
import { createTokenSigner, generateSigningKey } from "../lib/kit/tokens.js";
import { persist, restore } from "../lib/sync/sync.js";
import { findProgram } from "../lib/testing/programs.js";
import { startS3, type TestS3 } from "../lib/testing/s3.js";
import { issueApiToken } from "../services/core/src/auth/secrets.js";
import { coreConfigSchema } from "../services/core/src/config.js";
import { createLocalDriver } from "../services/core/src/driver/local/local-driver.js";
import { createSandbox, defaultSandboxLimits } from "../services/core/src/driver/local/sandbox.js";
import { startCore } from "../services/core/src/start-core.js";

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x: number) => Math.round(x * 10) / 10;

async function startLatency(repls: number) {
  // The embedded setup as `npm start` builds it (start-core.ts with the default config), over a
  // scratch data dir, with room for the bench's repls.
  const dataDir = await mkdtemp(join(tmpdir(), "devex-bench-lifecycle-"));
  const config = coreConfigSchema.parse({ DEVEX_DATA_DIR: dataDir, DEVEX_CORE_PORT: "0", DEVEX_REPL_QUOTA: "1000" });
  const e = await startCore(config, { log: createLogger("core", { level: "warn" }) });
  const driver = e.local!;
  const { secret } = await issueApiToken(e.state, "bench", "bench");
  const api = coreClientsFor(e.core.url, { token: secret });
  const samples: Array<{ totalMs: number; createMs: number; startMs: number; terminalMs: number }> = [];
  try {
    for (let i = -3; i < repls; i++) {
      while (driver.poolReady() < 2) await sleep(20);
      const t0 = performance.now();
      const { repl } = await api.repls.createRepl({ name: `bench-${i + 3}`, template: "node" });
      const t1 = performance.now();
      const { runner: access } = await api.repls.startRepl({ replId: repl!.replId });
      const t2 = performance.now();
      const runner = runnerClientsFor(access!.url, { token: access!.token });
      const { terminal } = await runner.terminals.createTerminal({ command: [] });
      const abort = new AbortController();
      for await (const m of runner.terminals.streamOutput(
        { terminalId: terminal!.terminalId, replay: true },
        { signal: abort.signal },
      )) {
        if (m.frame.case === "output" && m.frame.value.length > 0) break;
      }
      const t3 = performance.now();
      abort.abort();
      if (i >= 0) samples.push({ totalMs: t3 - t0, createMs: t1 - t0, startMs: t2 - t1, terminalMs: t3 - t2 });
      await api.repls.deleteRepl({ replId: repl!.replId });
    }
  } finally {
    await e.close(AbortSignal.timeout(60_000));
    await rm(dataDir, { recursive: true, force: true });
  }
  const pick = (k: keyof (typeof samples)[number]) => samples.map((s) => s[k]);
  const summary = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)) });
  return {
    repls: samples.length,
    template: "node",
    // The sandbox the default config (DEVEX_SANDBOX=auto) gives on this machine.
    isolation: createSandbox({ mode: "auto", limits: defaultSandboxLimits }).description,
    path: "Connect/HTTP 1.1 through core's /<replId>/ proxy; warm pool of 2 runner processes",
    createToFirstTerminalByteMs: summary(pick("totalMs")),
    breakdownMs: {
      createRepl: summary(pick("createMs")),
      startRepl: summary(pick("startMs")),
      terminal: summary(pick("terminalMs")),
    },
    target: { p50: 60, p99: 150 },
  };
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const began = performance.now();
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${stderr.slice(0, 500)}`)) : resolve(performance.now() - began),
    ),
  );
}

async function makeWorkspace(dir: string, files: number, size: number) {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 20}`);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.bin`), randomBytes(size));
  }
}

/** The same workspace through the local driver: StartRepl's restore + runner, StopRepl's persist + drain + teardown. */
async function driverStartStop(store: BlobStore, prefix: string, dataDir: string) {
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const driver = await createLocalDriver({
    dataDir,
    blobs: store,
    signer,
    sandbox: createSandbox({ mode: "auto", limits: defaultSandboxLimits }),
    log: createLogger("core", { level: "warn" }),
    poolSize: 1,
    persistIntervalMs: 0,
    access: "direct",
  });
  try {
    while (driver.poolReady() < 1) await sleep(20);
    const req = {
      replId: "rbench0000001",
      owner: "bench",
      workspacePrefix: prefix,
      runnerId: "run-bench",
      controlToken: "unused",
      coreUrl: "http://127.0.0.1:9",
    };
    const t0 = performance.now();
    const started = await driver.start(req, AbortSignal.timeout(120_000));
    const startMs = performance.now() - t0;
    const files = runnerClientsFor(started.url, {
      token: signer.mint({ aud: "runner", sub: "bench", repl: req.replId, scope: ["files"] }, 600),
    }).files;
    for (let i = 0; i < 10; i++) await files.writeFile({ path: `d${i}/edited-${i}.txt`, content: randomBytes(2048) });
    const t1 = performance.now();
    await driver.stop({ ...req, reason: "bench" }, AbortSignal.timeout(120_000));
    return { startMs: round(startMs), stopAfter10EditsMs: round(performance.now() - t1) };
  } finally {
    await driver.shutdown(AbortSignal.timeout(60_000));
    await driver.close();
  }
}

async function syncComparison(s3: TestS3) {
  const store = createS3BlobStore(s3.storeOptions);
  const aws = findProgram("/usr/bin/aws") ?? findProgram("aws");
  const rclone = findProgram("rclone");
  const awsEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_PAGER: "",
  };
  const rcloneEnv: NodeJS.ProcessEnv = { ...process.env };
  delete rcloneEnv.AWS_CA_BUNDLE;
  const remote = `:s3,provider=Other,access_key_id=${s3.accessKeyId},secret_access_key=${s3.secretAccessKey},endpoint='${s3.endpoint}',force_path_style=true:${s3.bucket}`;
  const cases = [
    { name: "2000 x 2 KB", files: 2000, size: 2048 },
    { name: "20 x 5 MB", files: 20, size: 5 * 1024 * 1024 },
  ];
  const out = [];
  const root = await mkdtemp(join(tmpdir(), "devex-bench-sync-"));
  try {
    for (const c of cases) {
      const slug = c.name.replace(/\W+/g, "-");
      const src = join(root, `src-${slug}`);
      await makeWorkspace(src, c.files, c.size);
      const row: Record<string, unknown> = { case: c.name, files: c.files, bytes: c.files * c.size };

      const prefix = `bench/devex/${slug}/`;
      const up = await persist({ store, prefix, dir: src, manifestPath: join(root, `${slug}.m.json`) });
      const again = await persist({ store, prefix, dir: src, manifestPath: join(root, `${slug}.m.json`) });
      const down = await restore({ store, prefix, dir: join(root, `devex-down-${slug}`) });
      row.devex = { persistMs: up.ms, restoreMs: down.ms, rePersistUnchangedMs: again.ms, uploaded: up.transferred };
      row.devexDriver = await driverStartStop(store, prefix, join(root, `driver-${slug}`));

      if (rclone) {
        const upMs = await sh(rclone, ["copy", "--transfers", "32", src, `${remote}/bench/rclone/${slug}`], rcloneEnv);
        const downMs = await sh(
          rclone,
          ["copy", "--transfers", "32", `${remote}/bench/rclone/${slug}`, join(root, `rclone-down-${slug}`)],
          rcloneEnv,
        );
        row.rclone = { persistMs: round(upMs), restoreMs: round(downMs) };
      }
      if (aws) {
        const base = ["--endpoint-url", s3.endpoint, "s3", "cp", "--recursive", "--only-show-errors"];
        const upMs = await sh(aws, [...base, src, `s3://${s3.bucket}/bench/aws/${slug}/`], awsEnv);
        const downMs = await sh(
          aws,
          [...base, `s3://${s3.bucket}/bench/aws/${slug}/`, join(root, `aws-down-${slug}`)],
          awsEnv,
        );
        row.awsCli = { persistMs: round(upMs), restoreMs: round(downMs) };
      }
      const r = row.rclone as { persistMs: number; restoreMs: number } | undefined;
      if (r) {
        row.devexVsRclone = {
          persist: Math.round((up.ms / r.persistMs) * 100) / 100,
          restore: Math.round((down.ms / r.restoreMs) * 100) / 100,
        };
      }
      out.push(row);
      console.log(JSON.stringify(row));
      await rm(src, { recursive: true, force: true });
    }
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
  return {
    tools: { rclone: rclone ?? "missing (apt-get install rclone)", awsCli: aws ?? "missing (apt-get install awscli)" },
    targets: { "2000 x 2 KB": "devex ≤ 1/3 of rclone's time", rePersistUnchangedMs: 300 },
    cases: out,
  };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      repls: { type: "string", default: "50" },
      "skip-sync": { type: "boolean", default: false },
      "skip-start": { type: "boolean", default: false },
    },
  });
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    node: process.version,
  };
  if (!values["skip-start"]) {
    result.start = await startLatency(Number(values.repls));
    console.log(JSON.stringify(result.start));
  }
  if (!values["skip-sync"]) {
    const s3 = await startS3("devex-bench");
    try {
      result.sync = await syncComparison(s3);
    } finally {
      await s3.dispose();
    }
  }
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/lifecycle.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log("wrote bench/results/lifecycle.json");
}
