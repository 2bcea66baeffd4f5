/**
 * Faults in the embedded setup, with real processes: S3 (s3rver) going away during a stop, a runner
 * killed with SIGKILL mid-session (what it changed since the last persist is saved after its death).
 * (A core killed and restarted: core-restart.e2e.test.ts.)
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, type ConnectError } from "@connectrpc/connect";
import { ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { createS3BlobStore } from "../../../lib/blob/s3.js";
import type { BlobStore } from "../../../lib/blob/store.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { startS3, type TestS3 } from "../../../lib/testing/s3.js";
import { type Embedded, startEmbedded } from "./embedded.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function remoteHashes(store: BlobStore, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [rel, content] of await readStoredWorkspace(store, prefix)) out[rel] = sha(content);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An embedded setup on s3rver for the enclosing describe; its parts, once its before hook ran. */
function embeddedOnS3() {
  const parts = {} as { s3: TestS3; blobs: BlobStore; e: Embedded };
  before(async () => {
    parts.s3 = await startS3();
    parts.blobs = createS3BlobStore(parts.s3.storeOptions);
    parts.e = await startEmbedded({ blobs: parts.blobs, syncAttempts: 2 });
  });
  after(async () => {
    await parts.e?.close();
    await parts.blobs?.close();
    await parts.s3?.dispose();
  });
  return { s3: () => parts.s3, blobs: () => parts.blobs, e: () => parts.e };
}

describe("embedded setup under faults", function () {
  this.timeout(90_000);

  describe("S3 stopped during a delete", () => {
    const { s3, blobs, e } = embeddedOnS3();

    it("the repl stays deleting with the error and cannot be started; a second delete after S3 returns finishes it, and its fork stays whole", async () => {
      const core = await e().login("alice");
      const { repl } = await core.repls.createRepl({ name: "s3-delete", template: "node" });
      const replId = repl!.replId;
      const { runner: access } = await core.repls.startRepl({ replId });
      await e()
        .runner(access!)
        .files.writeFile({ path: "keep.txt", content: Buffer.from("the fork's") });
      await core.repls.stopRepl({ replId });
      const { repls: forks } = await core.checkpoints.forkRepl({ replId, name: "its-fork" });
      const forkPrefix = `repl/alice/${forks[0]!.replId}/`;

      await s3().stop();
      await assert.rejects(core.repls.deleteRepl({ replId }), (err: ConnectError) => err.code === Code.Unavailable);
      const { repl: failed } = await core.repls.getRepl({ replId });
      assert.equal(failed?.status, ReplStatus.DELETING, "a half-deleted repl is never stopped (startable) again");
      assert.match(failed?.lastError ?? "", /delete failed/);
      await assert.rejects(
        core.repls.startRepl({ replId }),
        (err: ConnectError) => err.code === Code.FailedPrecondition && /being deleted/.test(err.rawMessage),
      );

      await s3().start();
      await core.repls.deleteRepl({ replId });
      await assert.rejects(core.repls.getRepl({ replId }), (err: ConnectError) => err.code === Code.NotFound);
      assert.equal((await remoteHashes(blobs(), forkPrefix))["keep.txt"], sha(Buffer.from("the fork's")));
    });
  });

  describe("S3 stopped during a stop", () => {
    const { s3, blobs, e } = embeddedOnS3();

    it("the stop fails with Unavailable, runner and workspace stay; after S3 returns the next stop persists every file", async () => {
      const core = await e().login("alice");
      const { repl } = await core.repls.createRepl({ name: "s3-outage", template: "node" });
      const replId = repl!.replId;
      const prefix = `repl/alice/${replId}/`;
      const { runner: access } = await core.repls.startRepl({ replId });
      const runner = e().runner(access!);
      const expected: Record<string, string> = {};
      for (let i = 0; i < 60; i++) {
        const content = Buffer.from(`file ${i} ${"x".repeat(i * 37)}`);
        await runner.files.writeFile({ path: `data/f${i}.txt`, content, createParents: true });
        expected[`data/f${i}.txt`] = sha(content);
      }
      await runner.files.deleteFile({ path: "package.json" });
      for (const f of ["index.js"]) expected[f] = sha((await runner.files.readFile({ path: f })).content);

      // S3 goes away while the stop is on its way (at once, or mid-persist: either must lose nothing).
      const stopping = core.repls.stopRepl({ replId });
      await sleep(20);
      await s3().stop();
      const outcome = await stopping.then(
        () => "stopped",
        (err: ConnectError) => err,
      );
      if (outcome !== "stopped") {
        assert.equal((outcome as ConnectError).code, Code.Unavailable);
        const { repl: now } = await core.repls.getRepl({ replId });
        assert.equal(now?.status, ReplStatus.RUNNING, "core keeps the runner");
        assert.match(now?.lastError ?? "", /stop failed/);
        // The runner still serves the whole workspace.
        assert.equal(sha((await runner.files.readFile({ path: "data/f59.txt" })).content), expected["data/f59.txt"]);
        // A second stop while S3 is still down fails the same way.
        await assert.rejects(core.repls.stopRepl({ replId }), (err: ConnectError) => err.code === Code.Unavailable);
        await s3().start();
        const { repl: stopped } = await core.repls.stopRepl({ replId });
        assert.equal(stopped?.status, ReplStatus.STOPPED);
      } else {
        await s3().start();
      }
      assert.deepEqual(await remoteHashes(blobs(), prefix), expected);
    });
  });

  describe("runner killed with SIGKILL mid-session", () => {
    let e: Embedded;
    before(async () => {
      e = await startEmbedded({ heartbeatIntervalMs: 1000, persistIntervalMs: 700 });
    });
    after(async () => {
      await e?.close();
    });

    it("the repl is marked stopped within the heartbeat TTL, and what changed since the last persist is persisted after its death", async () => {
      const core = await e.login("alice");
      const { repl } = await core.repls.createRepl({ name: "killed", template: "node" });
      const replId = repl!.replId;
      const prefix = `repl/alice/${replId}/`;
      const { runner: access } = await core.repls.startRepl({ replId });
      const runner = e.runner(access!);
      await runner.files.writeFile({ path: "state.txt", content: Buffer.from("v1") });
      // Wait for the periodic persist to carry v1.
      for (let i = 0; i < 100; i++) {
        const h = await remoteHashes(e.blobs, prefix);
        if (h["state.txt"] === sha(Buffer.from("v1"))) break;
        await sleep(100);
      }
      assert.equal((await remoteHashes(e.blobs, prefix))["state.txt"], sha(Buffer.from("v1")));

      await runner.files.writeFile({ path: "state.txt", content: Buffer.from("v2, written just before the kill") });
      const runnersDir = join(e.dir, "local", "runners");
      const records = await Promise.all(
        (await readdir(runnersDir)).map(async (d) =>
          JSON.parse(await readFile(join(runnersDir, d, "record.json"), "utf8").catch(() => "{}")),
        ),
      );
      const record = records.find((r) => r.replId === replId);
      process.kill(record.pid, "SIGKILL");
      const killedAt = Date.now();

      let status: ReplStatus | undefined;
      let listed = 1;
      while (Date.now() - killedAt < 8000) {
        status = (await core.repls.getRepl({ replId })).repl?.status;
        listed = (await e.driver.list(AbortSignal.timeout(2000))).filter((r) => r.replId === replId).length;
        if (status === ReplStatus.STOPPED && listed === 0) break;
        await sleep(100);
      }
      assert.equal(status, ReplStatus.STOPPED, "noticed within the heartbeat TTL (3 × 1 s) plus slack");
      const left = (await e.driver.list(AbortSignal.timeout(2000))).filter((r) => r.replId === replId);
      assert.deepEqual(left, [], JSON.stringify({ record, left, status }));
      // Its sandbox died with it, so the workspace was still and whole: the driver persisted it.
      const v2 = sha(Buffer.from("v2, written just before the kill"));
      assert.equal((await remoteHashes(e.blobs, prefix))["state.txt"], v2);

      const { runner: again } = await core.repls.startRepl({ replId });
      const content = await e.runner(again!).files.readFile({ path: "state.txt" });
      assert.equal(Buffer.from(content.content).toString(), "v2, written just before the kill");
      await core.repls.stopRepl({ replId });
    });
  });
});
