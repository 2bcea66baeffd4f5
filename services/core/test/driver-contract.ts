/**
 * The shared contract every runtime Driver passes (local processes now, Kubernetes next). A driver's
 * test file calls `driverContract("local", makeFixture)`; the fixture supplies a real blob store the
 * driver persists to, the signer whose public key the runners trust, and how a test reaches a
 * started runner. Everything is checked through the Driver interface, the blob store and the
 * runner's own API — the rules in src/driver/driver.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { BlobStore } from "../../../lib/blob/store.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import { DomainError } from "../../../lib/kit/errors.js";
import type { TokenSigner } from "../../../lib/kit/tokens.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import type { Driver, DriverProgress, StartedRunner, StartRequest } from "../src/driver/driver.js";

export interface DriverFixture {
  driver: Driver;
  /** The store the driver restores from and persists to. */
  blobs: BlobStore;
  /** Mints runner access tokens (the runners trust its public key). */
  signer: TokenSigner;
  /** What the driver is told as core's URL. */
  coreUrl: string;
  /** Where a test reaches a started runner's API (StartedRunner.url unless that needs core's proxy). */
  clientUrl(started: StartedRunner, replId: string): string;
  /** Makes the blob store fail (true) or work again (false). */
  failBlobs(on: boolean): void | Promise<void>;
  close(): Promise<void>;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** The stored workspace (whatever the layout under the prefix), rel → text. */
async function stored(blobs: BlobStore, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [rel, content] of await readStoredWorkspace(blobs, prefix)) out[rel] = content.toString("utf8");
  return out;
}

export function driverContract(name: string, makeFixture: () => Promise<DriverFixture>): void {
  describe(`driver contract: ${name}`, function () {
    this.timeout(60_000);
    let f: DriverFixture;
    const signal = () => AbortSignal.timeout(45_000);

    function request(owner = "alice"): StartRequest {
      const replId = `r${randomBytes(6).toString("hex")}`;
      const runnerId = `run-${randomBytes(8).toString("hex")}`;
      return {
        replId,
        owner,
        workspacePrefix: `repl/${owner}/${replId}/`,
        runnerId,
        controlToken: f.signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 3600),
        coreUrl: f.coreUrl,
      };
    }

    function files(started: StartedRunner, replId: string) {
      const token = f.signer.mint(
        { aud: "runner", sub: "alice", repl: replId, scope: ["files", "terminals", "exec"] },
        600,
      );
      return runnerClientsFor(f.clientUrl(started, replId), { token }).files;
    }

    before(async () => {
      f = await makeFixture();
    });
    after(async () => {
      await f?.close();
    });

    it("start restores the workspace prefix, the runner serves it, status and list see it", async () => {
      const req = request();
      await f.blobs.put(`${req.workspacePrefix}hello.txt`, Buffer.from("hello"));
      await f.blobs.put(`${req.workspacePrefix}src/deep/a.js`, Buffer.from("a"));
      const progress: DriverProgress[] = [];
      const started = await f.driver.start(req, signal(), (p) => progress.push(p));
      try {
        assert.equal(started.runnerId, req.runnerId);
        const read = await files(started, req.replId).readFile({ path: "src/deep/a.js" });
        assert.equal(text(read.content), "a");
        assert.equal(await f.driver.status(req.runnerId, signal()), "running");
        const listed = (await f.driver.list(signal())).find((r) => r.runnerId === req.runnerId);
        assert.equal(listed?.replId, req.replId);
        assert.ok(progress.some((p) => p.phase === "restore" && p.filesDone === 2));
      } finally {
        await f.driver.stop({ ...req, reason: "test" }, signal());
      }
    });

    it("stop persists new, changed and deleted files before the runner goes away", async () => {
      const req = request();
      await f.blobs.put(`${req.workspacePrefix}keep.txt`, Buffer.from("v1"));
      await f.blobs.put(`${req.workspacePrefix}gone.txt`, Buffer.from("bye"));
      const started = await f.driver.start(req, signal());
      const fs = files(started, req.replId);
      await fs.writeFile({ path: "keep.txt", content: Buffer.from("v2") });
      await fs.writeFile({ path: "new/file.txt", content: Buffer.from("new"), createParents: true });
      await fs.deleteFile({ path: "gone.txt" });
      const progress: DriverProgress[] = [];
      const { persistTime } = await f.driver.stop({ ...req, reason: "test" }, signal(), (p) => progress.push(p));
      assert.ok(persistTime > 0);
      assert.equal(await f.driver.status(req.runnerId, signal()), "stopped");
      assert.ok(!(await f.driver.list(signal())).some((r) => r.runnerId === req.runnerId));
      assert.deepEqual(await stored(f.blobs, req.workspacePrefix), { "keep.txt": "v2", "new/file.txt": "new" });
      assert.ok(progress.some((p) => p.phase === "persist"));

      // A new runner for the same repl sees exactly that.
      const again = await f.driver.start({ ...req, runnerId: `run-${randomBytes(8).toString("hex")}` }, signal());
      try {
        assert.equal(text((await files(again, req.replId).readFile({ path: "new/file.txt" })).content), "new");
      } finally {
        await f.driver.stop({ ...req, runnerId: again.runnerId, reason: "test" }, signal());
      }
    });

    it("persist saves a running runner's files and leaves it serving; a runner that is gone is FailedPrecondition", async () => {
      const req = request();
      const started = await f.driver.start(req, signal());
      const fs = files(started, req.replId);
      try {
        await fs.writeFile({ path: "now.txt", content: Buffer.from("saved while running") });
        const { persistTime } = await f.driver.persist(req, signal());
        assert.ok(persistTime > 0);
        assert.deepEqual(await stored(f.blobs, req.workspacePrefix), { "now.txt": "saved while running" });
        assert.equal(await f.driver.status(req.runnerId, signal()), "running");
        await fs.writeFile({ path: "now.txt", content: Buffer.from("and again") });
        await f.driver.persist(req, signal());
        assert.deepEqual(await stored(f.blobs, req.workspacePrefix), { "now.txt": "and again" });
        // Nothing changed (a driver may skip its walk), then changes in directories made since.
        await f.driver.persist(req, signal());
        await fs.writeFile({ path: "deep/er/late.txt", content: Buffer.from("late"), createParents: true });
        await f.driver.persist(req, signal());
        await fs.writeFile({ path: "deep/er/late.txt", content: Buffer.from("later") });
        await f.driver.persist(req, signal());
        const want = { "now.txt": "and again", "deep/er/late.txt": "later" };
        assert.deepEqual(await stored(f.blobs, req.workspacePrefix), want);
      } finally {
        await f.driver.stop({ ...req, reason: "test" }, signal());
      }
      await assert.rejects(
        f.driver.persist(req, signal()),
        (err: DomainError) => err instanceof DomainError && err.kind === "failed-precondition",
      );
    });

    it("stop with persist: false leaves the prefix untouched; stopping an unknown runner succeeds", async () => {
      const req = request();
      const started = await f.driver.start(req, signal());
      await files(started, req.replId).writeFile({ path: "x.txt", content: Buffer.from("x") });
      await f.driver.stop({ ...req, reason: "repl deleted", persist: false }, signal());
      assert.deepEqual(await stored(f.blobs, req.workspacePrefix), {});
      assert.equal(await f.driver.status(req.runnerId, signal()), "stopped");
      await f.driver.stop({ ...request(), reason: "never started" }, signal());
      assert.equal(await f.driver.status("run-unknown", signal()), "stopped");
    });

    it("a persist failure fails the stop and keeps the runner and its files; the next stop persists them", async () => {
      const req = request();
      const started = await f.driver.start(req, signal());
      const fs = files(started, req.replId);
      await fs.writeFile({ path: "precious.txt", content: Buffer.from("do not lose me") });
      await f.failBlobs(true);
      try {
        await assert.rejects(f.driver.stop({ ...req, reason: "test" }, signal()));
      } finally {
        await f.failBlobs(false);
      }
      assert.equal(await f.driver.status(req.runnerId, signal()), "running");
      assert.equal(text((await fs.readFile({ path: "precious.txt" })).content), "do not lose me");
      await f.driver.stop({ ...req, reason: "test" }, signal());
      assert.equal((await stored(f.blobs, req.workspacePrefix))["precious.txt"], "do not lose me");
    });

    it("a start that is aborted or fails leaves nothing running", async () => {
      const req = request();
      await assert.rejects(f.driver.start(req, AbortSignal.abort()));
      const bad = request();
      await f.failBlobs(true);
      try {
        await assert.rejects(f.driver.start(bad, signal()));
      } finally {
        await f.failBlobs(false);
      }
      const running = (await f.driver.list(signal())).map((r) => r.replId);
      assert.ok(!running.includes(req.replId) && !running.includes(bad.replId));
    });

    it("runs runners for different repls at once, each with its own workspace", async () => {
      const reqs = [request(), request("bob")];
      const started = await Promise.all(reqs.map((r) => f.driver.start(r, signal())));
      try {
        await Promise.all(
          reqs.map((r, i) => files(started[i], r.replId).writeFile({ path: "who.txt", content: Buffer.from(r.owner) })),
        );
        for (const [i, r] of reqs.entries()) {
          assert.equal(text((await files(started[i], r.replId).readFile({ path: "who.txt" })).content), r.owner);
        }
      } finally {
        await Promise.all(reqs.map((r) => f.driver.stop({ ...r, reason: "test" }, signal())));
      }
      for (const r of reqs) assert.equal((await stored(f.blobs, r.workspacePrefix))["who.txt"], r.owner);
    });
  });
}
