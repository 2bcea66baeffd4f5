/** The local driver against the shared driver contract, with real runner processes and a real blob store. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { createLocalBlobStore } from "../src/blob/local.js";
import { createLocalDriver } from "../src/driver/local/local-driver.js";
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
