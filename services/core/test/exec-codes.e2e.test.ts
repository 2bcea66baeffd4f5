/**
 * Exec like bash on the local driver's runners, as `npm start` runs them: with DEVEX_SANDBOX=none
 * (commands behind prlimit only) and with bubblewrap (the runner in its sandbox, each command in a
 * nested one that sees less than the runner does). The cases are the runner's shared suite.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import type { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { execCodeSuite, execIn } from "../../runner/test/exec-codes.js";
import type { StartRequest } from "../src/driver/driver.js";
import { createLocalDriver, type LocalDriver } from "../src/driver/local/local-driver.js";
import { createSandbox, defaultSandboxLimits, type SandboxMode } from "../src/driver/local/sandbox.js";

for (const mode of ["none", "bwrap"] as const satisfies SandboxMode[]) {
  describe(`local driver, DEVEX_SANDBOX=${mode}`, function () {
    this.timeout(120_000);
    let dir: string;
    let driver: LocalDriver | undefined;
    let req: StartRequest;
    let procs: Client<typeof ProcessService>;

    before(async function () {
      requireProgram(this, "bash");
      requireProgram(this, "prlimit");
      if (mode === "bwrap")
        requireProgram(this, "bwrap", (path) =>
          createSandbox({ mode: "auto", limits: defaultSandboxLimits }).kind === "bwrap"
            ? undefined
            : `${path} cannot create namespaces here (user namespaces disabled?)`,
        );
      dir = await mkdtemp(join(tmpdir(), "devex-exec-codes-"));
      const signer = createTokenSigner(generateSigningKey().privateKeyPem);
      driver = await createLocalDriver({
        dataDir: join(dir, "local"),
        blobs: createLocalBlobStore(join(dir, "blobs")),
        signer,
        sandbox: createSandbox({ mode, limits: defaultSandboxLimits }),
        log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
        access: "direct",
        poolSize: 1,
        persistIntervalMs: 0,
      });
      const replId = `r${randomBytes(6).toString("hex")}`;
      const runnerId = `run-${randomBytes(8).toString("hex")}`;
      req = {
        replId,
        owner: "alice",
        workspacePrefix: `repl/alice/${replId}/`,
        runnerId,
        controlToken: signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 3600),
        coreUrl: "http://127.0.0.1:9",
      };
      const started = await driver.start(req, AbortSignal.timeout(60_000));
      const token = signer.mint({ aud: "runner", sub: "alice", repl: replId, scope: ["exec"] }, 600);
      procs = runnerClientsFor(started.url, { token }).processes;
    });
    after(async () => {
      if (driver) {
        await driver.stop({ ...req, reason: "test" }, AbortSignal.timeout(30_000)).catch(() => {});
        await driver.shutdown(AbortSignal.timeout(30_000));
        await driver.close();
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    execCodeSuite(`local driver, DEVEX_SANDBOX=${mode}`, () => procs);

    it("a program on PATH in the runner's view but not in the command's is looked up as the command sees it", async () => {
      // Devex's own node_modules/.bin, on PATH under `npm start`: part of a sandboxed runner's code, not of its repl.
      const env = { PATH: `${join(import.meta.dirname, "../../../node_modules/.bin")}:/usr/bin:/bin` };
      const r = await execIn(procs, { argv: ["tsc", "--version"], env });
      if (mode === "bwrap")
        assert.deepEqual(r, { stdout: "", stderr: "bash: tsc: command not found\n", exitCode: 127 });
      else assert.deepEqual([r.exitCode, r.stdout.startsWith("Version ")], [0, true], r.stderr);
    });
  });
}
