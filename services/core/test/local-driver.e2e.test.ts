/**
 * The local driver against the shared driver contract, with real runner processes and a real blob
 * store; and its runner pool.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { listGenerations, readStoredWorkspace, restore } from "../../../lib/sync/sync.js";
import { createLocalDriver, type LocalDriverOptions } from "../src/driver/local/local-driver.js";
import { RunnerPool } from "../src/driver/local/pool.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";
import { driverContract } from "./driver-contract.js";
import { faultyBlobs } from "./faulty-blobs.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A local driver on a fresh temp dir and local blob store (with faults on demand), runners reached directly. */
async function localDriver(o: Partial<LocalDriverOptions>) {
  const dir = await mkdtemp(join(tmpdir(), "devex-local-driver-"));
  const blobs = faultyBlobs(createLocalBlobStore(join(dir, "blobs")));
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const driver = await createLocalDriver({
    dataDir: join(dir, "local"),
    blobs,
    signer,
    sandbox: createSandbox({ mode: "auto", limits: defaultSandboxLimits }),
    log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    access: "direct",
    ...o,
  });
  return { dir, blobs, signer, driver };
}

driverContract("local processes", async () => {
  const { dir, blobs, signer, driver } = await localDriver({ poolSize: 2, persistIntervalMs: 0, syncAttempts: 2 });
  return {
    driver,
    blobs,
    signer,
    coreUrl: "http://127.0.0.1:9",
    clientUrl: (started) => started.url,
    failBlobs: (on) => {
      blobs.failing = on;
    },
    async close() {
      await driver.shutdown(AbortSignal.timeout(30_000));
      await driver.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** A pool of unsandboxed runners over `runnersDir`, on the host where the test can see them. */
function unsandboxedPool(runnersDir: string, size: number): RunnerPool {
  const sandbox = createSandbox({ mode: "none", limits: defaultSandboxLimits });
  return new RunnerPool({
    runnersDir,
    size,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
    launch: (paths) => {
      const slot = { ...paths, code: [], hostNetwork: true };
      return { slot, launch: sandbox.runnerLaunch(slot) };
    },
    log: createLogger("core", { level: "silent" }),
  });
}

describe("local driver: runner pool", function () {
  this.timeout(60_000);

  it("a pooled runner killed while warming up leaves nothing behind (its warm-up workspace is in its own folder)", async () => {
    const runnersDir = await mkdtemp(join(tmpdir(), "devex-pool-"));
    // Unsandboxed, so the warm-up folder is on the host where the test can see it.
    const pool = unsandboxedPool(runnersDir, 1);
    try {
      pool.fill();
      // The warm-up workspace shows up inside the process's folder (…/runners/<procId>/warmup-*).
      let warmup: string | undefined;
      for (let i = 0; i < 600 && !warmup; i++) {
        for (const proc of await readdir(runnersDir).catch(() => [])) {
          const hit = (await readdir(join(runnersDir, proc)).catch(() => [])).find((n) => n.startsWith("warmup-"));
          if (hit) warmup = join(runnersDir, proc, hit);
        }
        if (!warmup) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(warmup, "no warm-up workspace appeared in the pooled process's folder");
      await pool.close(); // SIGKILL, then the folder goes
      assert.deepEqual(await readdir(runnersDir), []);
    } finally {
      await pool.close();
      await rm(runnersDir, { recursive: true, force: true });
    }
  });
});

describe("local driver: a pool closed while it forks", function () {
  this.timeout(60_000);

  it("leaves no folder and no process behind once close resolves (the embedded setup's data dir is removed right after)", async () => {
    const runnersDir = await mkdtemp(join(tmpdir(), "devex-pool-"));
    const pool = unsandboxedPool(runnersDir, 2);
    const runningUnder = async () => {
      const pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
      const cmdlines = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")));
      return cmdlines.filter((c) => c.includes(runnersDir)).length;
    };
    try {
      pool.fill(); // both forks are under way
      await pool.close();
      assert.deepEqual(await readdir(runnersDir), [], "a folder left behind by close");
      assert.equal(await runningUnder(), 0, "a pooled runner still running after close");
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(await readdir(runnersDir), [], "a folder appearing after close");
    } finally {
      // Retried: a fork outliving close (the bug) would otherwise fail the rm and hide the assertion.
      await rm(runnersDir, { recursive: true, force: true, maxRetries: 20 });
    }
  });
});

describe("local driver: a runner's folder", function () {
  this.timeout(60_000);

  it("a leftover folder nested deeper than PATH_MAX does not stop core from starting, and is removed", async () => {
    const { dir, driver } = await localDriver({ poolSize: 0 });
    await driver.close();
    // A dead runner's folder whose repl made a 600-level tree (each mkdir relative: no long paths).
    const dead = join(dir, "local", "runners", "p-dead");
    await mkdir(join(dead, "workspace"), { recursive: true });
    await writeFile(
      join(dead, "record.json"),
      JSON.stringify({ procId: "p-dead", pid: 999_999_999, state: "assigned" }),
    );
    const deepen = "for (let i = 0; i < 600; i++) { fs.mkdirSync('aaaaaaaaaa'); process.chdir('aaaaaaaaaa'); }";
    execFileSync(process.execPath, ["-e", deepen], { cwd: join(dead, "workspace") });
    const again = await createLocalDriver({
      dataDir: join(dir, "local"),
      blobs: createLocalBlobStore(join(dir, "blobs")),
      signer: createTokenSigner(generateSigningKey().privateKeyPem),
      sandbox: createSandbox({ mode: "auto", limits: defaultSandboxLimits }),
      log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
      poolSize: 0,
    });
    try {
      assert.deepEqual(await readdir(join(dir, "local", "runners")), []);
    } finally {
      await again.close();
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  });
});

describe("local driver: persist ordering", function () {
  this.timeout(120_000);

  it("a slowed stop racing periodic persists keeps every stored file, and an earlier generation restores", async () => {
    const { dir, blobs, signer, driver } = await localDriver({ poolSize: 1, persistIntervalMs: 50 });
    try {
      const replId = `r${randomBytes(6).toString("hex")}`;
      const runnerId = `run-${randomBytes(8).toString("hex")}`;
      const prefix = `repl/alice/${replId}/`;
      const started = await driver.start(
        {
          replId,
          owner: "alice",
          workspacePrefix: prefix,
          runnerId,
          controlToken: signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 600),
          coreUrl: "http://127.0.0.1:9",
        },
        AbortSignal.timeout(60_000),
      );
      const token = signer.mint({ aud: "runner", sub: "alice", repl: replId, scope: ["files"] }, 600);
      const files = runnerClientsFor(started.url, { token }).files;
      const names = Array.from({ length: 40 }, (_, i) => `src/f${i}.txt`);
      for (const path of names.slice(0, 20)) {
        await files.writeFile({ path, content: Buffer.from(path), createParents: true });
      }
      // A first generation with half the files, from the periodic persist.
      for (let i = 0; i < 200 && (await listGenerations({ store: blobs, prefix })).length === 0; i++) await sleep(50);
      for (const path of names.slice(20)) {
        await files.writeFile({ path, content: Buffer.from(path), createParents: true });
      }
      // Every blob call now takes 20 ms: the stop's persists take a while, and periodic persists
      // keep queueing behind it; the ones that run after it must not touch the stored workspace.
      blobs.delayMs = 20;
      await driver.stop(
        { replId, runnerId, owner: "alice", workspacePrefix: prefix, reason: "test" },
        AbortSignal.timeout(60_000),
      );
      await sleep(500); // queued persists run now (before the fix: against the removed workspace)
      blobs.delayMs = 0;
      const storedNow = await readStoredWorkspace(blobs, prefix);
      assert.deepEqual([...storedNow.keys()].sort(), [...names].sort());
      const generations = await listGenerations({ store: blobs, prefix });
      assert.ok(generations.length >= 2, `expected at least two generations, got ${generations.length}`);
      const oldest = generations[generations.length - 1];
      const back = join(dir, "older");
      await mkdir(back);
      await restore({
        store: blobs,
        prefix,
        dir: back,
        manifestPath: join(dir, "older.json"),
        generation: oldest.generation,
      });
      // The oldest kept generation is an earlier state: some of the files, each with its content.
      const restored = (await readdir(join(back, "src")).catch(() => [] as string[])).sort();
      assert.equal(restored.length, oldest.files);
      assert.ok(restored.length < names.length, `generation ${oldest.generation} has every file`);
      for (const name of restored) assert.equal(await readFile(join(back, "src", name), "utf8"), `src/${name}`);
    } finally {
      await driver.shutdown(AbortSignal.timeout(30_000));
      await driver.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
