/**
 * What the Kubernetes driver's contract runs share whenever the repl pods run for real through the
 * local kubelet runtime (k8s-local-kubelet.ts), on the fake API server (k8s-contract.e2e) or the
 * real one (k8s-real-api.e2e): a faulty local blob store, the runtime, the fixture around a driver,
 * and the start of the killed-pod test (a file written, then stored by a periodic persist alone).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { runnerClientsFor } from "../../../lib/client/node.js";
import type { TokenSigner } from "../../../lib/kit/tokens.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import type { Driver, StartRequest } from "../src/driver/driver.js";
import type { DriverFixture } from "./driver-contract.js";
import { faultyBlobs } from "./faulty-blobs.js";
import { createLocalKubelet } from "./k8s-local-kubelet.js";

export async function localKubeletParts(name: string) {
  const dir = await mkdtemp(join(tmpdir(), `devex-${name}-`));
  const blobs = faultyBlobs(createLocalBlobStore(join(dir, "blobs")));
  const kubelet = createLocalKubelet({ blobs, root: join(dir, "pods") });
  /** The contract's fixture: runners reached where their live pod runs; `close` then the folder. */
  const fixture = (driver: Driver, signer: TokenSigner, close: () => Promise<void>): DriverFixture => ({
    driver,
    blobs,
    signer,
    coreUrl: "http://127.0.0.1:9",
    clientUrl: (_started, replId) => {
      const url = kubelet.runnerUrl(replId);
      if (!url) throw new Error(`no live pod serves repl ${replId}`);
      return url;
    },
    failBlobs: (on) => {
      blobs.failing = on;
    },
    async close() {
      try {
        await close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });
  return { blobs, kubelet, fixture };
}

/**
 * Starts a repl, writes saved.txt through its runner and waits until the sidecar's periodic persist
 * (no stop asked for it) has stored it. `request()` makes another start of the same repl.
 */
export async function savedByPeriodicPersist(f: DriverFixture, signal: () => AbortSignal) {
  const replId = `r${randomBytes(6).toString("hex")}`;
  const request = (): StartRequest => {
    const runnerId = `run-${randomBytes(8).toString("hex")}`;
    return {
      replId,
      owner: "alice",
      workspacePrefix: `repl/alice/${replId}/`,
      runnerId,
      controlToken: f.signer.mint({ aud: "runner-control", sub: runnerId, repl: replId, scope: [] }, 600),
      coreUrl: f.coreUrl,
    };
  };
  const token = f.signer.mint({ aud: "runner", sub: "alice", repl: replId, scope: ["files"] }, 600);
  const req = request();
  const started = await f.driver.start(req, signal());
  const firstUrl = f.clientUrl(started, replId);
  await runnerClientsFor(firstUrl, { token }).files.writeFile({
    path: "saved.txt",
    content: Buffer.from("before the persist"),
  });
  let stored = new Map<string, Buffer>();
  for (const deadline = Date.now() + 20_000; !stored.has("saved.txt"); await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < deadline, "the periodic persist stored it");
    stored = await readStoredWorkspace(f.blobs, req.workspacePrefix).catch(() => new Map());
  }
  assert.equal(stored.get("saved.txt")?.toString(), "before the persist");
  /** saved.txt as the runner serving `url` reads it. */
  const readSaved = async (url: string) =>
    Buffer.from((await runnerClientsFor(url, { token }).files.readFile({ path: "saved.txt" })).content).toString();
  return { replId, req, request, started, firstUrl, readSaved };
}
