/**
 * Issue 13, point 1, through stop → start on the local driver: the repl's own user builds the
 * fidelity table (lib/sync/fidelity-fixture.ts) in its workspace through Exec, in the default
 * sandbox (its own uid when bubblewrap is there); stop persists it; a new runner for the repl
 * restores it; Exec in that repl probes every row with stat and sha256sum.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import {
  FIDELITY_BUILD,
  FIDELITY_PROBE,
  fidelityPaths,
  fidelityTable,
  parseProbe,
} from "../../../lib/sync/fidelity-fixture.js";
import type { StartedRunner, StartRequest } from "../src/driver/driver.js";
import { createLocalDriver, type LocalDriver } from "../src/driver/local/local-driver.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";

describe("workspace fidelity: stop → start on the local driver", function () {
  this.timeout(180_000);
  let dir: string;
  let driver: LocalDriver;
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const signal = () => AbortSignal.timeout(120_000);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-fidelity-core-"));
    driver = await createLocalDriver({
      dataDir: join(dir, "local"),
      blobs: createLocalBlobStore(join(dir, "blobs")),
      signer,
      sandbox: createSandbox({ mode: "auto", limits: defaultSandboxLimits }),
      log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
      access: "direct",
      poolSize: 0,
      persistIntervalMs: 0,
    });
  });
  after(async () => {
    await driver?.shutdown(AbortSignal.timeout(30_000));
    await driver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs argv in the repl's workspace through Exec; its stdout, or a failure with its stderr. */
  async function exec(started: StartedRunner, replId: string, argv: string[]): Promise<string> {
    const token = signer.mint({ aud: "runner", sub: "alice", repl: replId, scope: ["exec"] }, 600);
    const { processes } = runnerClientsFor(started.url, { token });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let exitCode: number | undefined;
    for await (const e of processes.exec({ command: { argv } }, { signal: signal() })) {
      if (e.event.case === "stdout") out.push(Buffer.from(e.event.value));
      if (e.event.case === "stderr") err.push(Buffer.from(e.event.value));
      if (e.event.case === "exit") exitCode = e.event.value.exitCode;
    }
    assert.equal(exitCode, 0, `${argv.slice(0, 2).join(" ")} failed: ${Buffer.concat(err).toString()}`);
    return Buffer.concat(out).toString();
  }

  it("every row of the fidelity table comes back in the repl after stop and start", async () => {
    const replId = `r${randomBytes(6).toString("hex")}`;
    const request = (): StartRequest => {
      const runnerId = `run-${randomBytes(8).toString("hex")}`;
      return {
        replId,
        owner: "alice",
        workspacePrefix: `repl/alice/${replId}/`,
        runnerId,
        controlToken: signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 3600),
        coreUrl: "http://127.0.0.1:9",
      };
    };
    const probe = ["bash", "-c", FIDELITY_PROBE, "fidelity", ...fidelityPaths()];

    const first = request();
    const running = await driver.start(first, signal());
    await exec(running, replId, ["bash", "-c", FIDELITY_BUILD]);
    const before = parseProbe(await exec(running, replId, probe));
    await driver.stop({ ...first, reason: "test" }, signal());

    const second = request();
    const again = await driver.start(second, signal());
    try {
      const after = parseProbe(await exec(again, replId, probe));
      const uid = (await exec(again, replId, ["id", "-u"])).trim();
      const table = fidelityTable(`local driver: stop → start, probed in the repl (uid ${uid})`, before, after);
      assert.equal(table.failed, 0, "rows marked FAIL above");
    } finally {
      await driver.stop({ ...second, reason: "test" }, signal());
    }
  });
});
