/**
 * Core with the Kubernetes driver, through core's public API: StartRepl/StopRepl create and delete
 * a repl's objects in the (fake) cluster, and a restarted core's reconciliation adopts the runner
 * its session points at and stops the leftovers (persisting the one whose repl still exists).
 * The cluster is the fake API server with the local kubelet (lib/sync and the runner in-process).
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { listAll } from "../../../lib/blob/store.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { readRemote } from "../../../lib/sync/remote.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Core, createCore } from "../src/core.js";
import type { Driver } from "../src/driver/driver.js";
import { kubernetesApis } from "../src/driver/kubernetes/apis.js";
import { createKubernetesDriver } from "../src/driver/kubernetes/driver.js";
import { createEmbeddedStore } from "../src/state/embedded.js";
import type { FakeKubeApi } from "./fake-kube-api.js";
import { clientsFor, TEST_SECRETS_KEY, templatesDir } from "./harness.js";
import { NS, startValidatingFake, testSettings } from "./k8s-fixtures.js";
import { createLocalKubelet } from "./k8s-local-kubelet.js";

describe("core with the Kubernetes driver (fake API server)", function () {
  this.timeout(60_000);
  let dir: string;
  let fake: FakeKubeApi;
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  const log = createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-k8s-core-"));
  });
  after(async () => {
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("StartRepl/StopRepl drive the cluster; a restarted core adopts the live runner and stops leftovers", async () => {
    const state = await createEmbeddedStore(join(dir, "state"));
    const blobs = createLocalBlobStore(join(dir, "blobs"));
    fake = await startValidatingFake({ runtime: createLocalKubelet({ blobs, root: join(dir, "pods") }) });
    const newDriver = (): Driver =>
      createKubernetesDriver({
        apis: kubernetesApis(fake.kubeConfig()),
        settings: testSettings({ tokenPublicKeyPem: signer.publicKeyPem }),
        pollIntervalMs: 10,
        readyTimeoutMs: 20_000,
        persistTimeoutMs: 20_000,
      });
    const startCore = (driver: Driver) =>
      createCore({
        log,
        templatesDir,
        port: 0,
        cookieSecret: "test-cookie-secret",
        secretsKey: TEST_SECRETS_KEY,
        state,
        blobs,
        driver,
        signer,
        reconcileIntervalMs: 0,
      });
    const deployments = () =>
      fake.objects("deployments", NS).map((d) => d.metadata.annotations["devex.dev/runner-id"] as string);

    let core: Core | undefined = await startCore(newDriver());
    try {
      const token = (await issueApiToken(state, "rita", "test")).secret;
      const c = clientsFor(core.url, { bearer: token });
      const live = (await c.repl.createRepl({ name: "live", template: "node" })).repl!.replId;
      const lost = (await c.repl.createRepl({ name: "lost", template: "node" })).repl!.replId;

      const started = await c.repl.startRepl({ replId: live });
      assert.equal(started.runner?.url, `https://repl.devex.test/${live}`);
      const [liveRunner] = deployments();
      assert.ok(liveRunner);

      // Leftovers: a runner for an existing repl that no session knows (a core crashed before
      // recording it), and one for a repl that no longer exists.
      const leftover = newDriver();
      const base = { owner: "rita", controlToken: "x", coreUrl: core.url };
      await leftover.start(
        { ...base, replId: lost, runnerId: "run-00000000000000aa", workspacePrefix: `repl/rita/${lost}/` },
        AbortSignal.timeout(30_000),
      );
      await leftover.start(
        { ...base, replId: "rgone", runnerId: "run-00000000000000bb", workspacePrefix: "repl/rita/rgone/" },
        AbortSignal.timeout(30_000),
      );
      assert.equal(deployments().length, 3);

      // Core restarts (new process, new driver instance, same state).
      await core.close();
      core = await startCore(newDriver());
      fake.requests.length = 0;
      assert.equal(await core.reconcile(), 2);
      assert.deepEqual(deployments(), [liveRunner], "the live runner is adopted, the leftovers are gone");
      const injected = fake.requests.filter((r) => r.resource === "pods/ephemeralcontainers");
      assert.equal(injected.length, 1, "only the leftover whose repl exists was persisted");
      assert.equal(await core.reconcile(), 0);

      // StopRepl persists through the ephemeral container, then the objects go.
      const c2 = clientsFor(core.url, { bearer: token });
      await c2.repl.stopRepl({ replId: live });
      assert.deepEqual(deployments(), []);
      const keys = (await listAll(blobs, `repl/rita/${live}/`)).map((e) => e.key);
      assert.ok(keys.length > 0, "the workspace is still in the blob store");
      // The persist container stored the home too (the runner seeded it from /etc/skel).
      const home = await readRemote({ store: blobs, prefix: `home/rita/${live}/` }, 1);
      assert.ok(home.indexed);
      assert.deepEqual(
        Object.keys(home.files).sort(),
        (await readdir("/etc/skel")).sort(),
        "the home is stored beside the workspace",
      );
    } finally {
      await core?.close();
      await state.close();
      await blobs.close();
    }
  });
});
