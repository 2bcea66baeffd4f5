/**
 * The local driver against the shared driver contract, with real runner processes and a real blob
 * store; and its runner pool.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { createLocalBlobStore } from "../src/blob/local.js";
import { createLocalDriver } from "../src/driver/local/local-driver.js";
import { RunnerPool } from "../src/driver/local/pool.js";
import { createSandbox, defaultLimits } from "../src/driver/local/sandbox.js";
import { driverContract } from "./driver-contract.js";
import { faultyBlobs } from "./faulty-blobs.js";

driverContract("local processes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "devex-local-driver-"));
  const blobs = faultyBlobs(createLocalBlobStore(join(dir, "blobs")));
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const driver = await createLocalDriver({
    dataDir: join(dir, "local"),
    blobs,
    signer,
    sandbox: createSandbox({ mode: "auto", limits: defaultLimits }),
    log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    poolSize: 2,
    persistIntervalMs: 0,
    access: "direct",
    syncAttempts: 2,
  });
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

describe("local driver: runner pool", function () {
  this.timeout(60_000);

  it("a pooled runner killed while warming up leaves nothing behind (its warm-up workspace is in its own folder)", async () => {
    const runnersDir = await mkdtemp(join(tmpdir(), "devex-pool-"));
    // Unsandboxed, so the warm-up folder is on the host where the test can see it.
    const sandbox = createSandbox({ mode: "none", limits: defaultLimits });
    const pool = new RunnerPool({
      runnersDir,
      size: 1,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
      launch: (paths) => {
        const slot = { ...paths, code: [], hostNetwork: true };
        return { slot, launch: sandbox.runnerLaunch(slot) };
      },
      log: createLogger("core", { level: "silent" }),
    });
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
