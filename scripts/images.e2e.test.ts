/**
 * The container images, built by scripts/images.sh with Podman (base from the Debian mirror when no
 * registry answers), then run as the Kubernetes driver's pod asks (lib/testing/podman-pod.ts): the
 * pod spec comes from the driver's own buildDeployment and buildPersistContainer, so the restore
 * init container, the runner, the persist sidecar and the ephemeral persist container run exactly
 * the commands, environment, mounts and security context a cluster would give them. The pod's
 * network namespace is the test's own, whose only neighbour is the host end of its veth, where
 * s3rver listens.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { V1PodSpec } from "@kubernetes/client-node";
import { createS3BlobStore } from "../lib/blob/s3.js";
import { runnerClientsFor } from "../lib/client/node.js";
import { createTokenSigner, generateSigningKey } from "../lib/kit/tokens.js";
import { persist, readStoredWorkspace } from "../lib/sync/sync.js";
import { type PodmanPod, podmanPod, ulimits } from "../lib/testing/podman-pod.js";
import { inCI, requireProgram } from "../lib/testing/programs.js";
import { startS3, type TestS3 } from "../lib/testing/s3.js";
import { waitFor } from "../lib/testing/wait.js";
import {
  buildDeployment,
  buildPersistContainer,
  objectName,
  PERSIST_PORT,
  RUNNER_PORT,
} from "../services/core/src/driver/kubernetes/objects.js";
import { runInTerminal } from "../services/core/test/embedded.js";
import { testSettings } from "../services/core/test/k8s-fixtures.js";
import { loadDocs } from "../services/core/test/k8s-kustomize.js";

const exec = promisify(execFile);
const script = fileURLToPath(new URL("./images.sh", import.meta.url));
const infra = fileURLToPath(new URL("../infra/k8s", import.meta.url));
const images = ["runner-node", "runner-python", "core", "mcp", "egress"];
const image = (name: string) => `localhost/devex/${name}:dev`;

/** A network namespace of the test's own: a veth to the host, no other route. */
async function testNetns() {
  const tag = randomBytes(3).toString("hex");
  const name = `devex-img-${tag}`;
  const [hostEnd, podEnd] = [`dvxh${tag}`, `dvxp${tag}`]; // interface names: 15 characters at most
  const octet = 16 + (randomBytes(1)[0]! % 200);
  const [hostIp, podIp] = [`198.18.${octet}.1`, `198.18.${octet}.2`];
  const ip = (...a: string[]) => exec("ip", a);
  // Deleting the namespace deletes the veth pair with it.
  const close = () => ip("netns", "delete", name).then(() => {});
  await ip("netns", "add", name);
  try {
    await ip("link", "add", hostEnd, "type", "veth", "peer", "name", podEnd);
    await ip("link", "set", podEnd, "netns", name);
    await ip("addr", "add", `${hostIp}/30`, "dev", hostEnd);
    await ip("link", "set", hostEnd, "up");
    await ip("-n", name, "addr", "add", `${podIp}/30`, "dev", podEnd);
    await ip("-n", name, "link", "set", podEnd, "up");
    await ip("-n", name, "link", "set", "lo", "up");
  } catch (err) {
    await ip("link", "delete", hostEnd).catch(() => {});
    await close();
    throw err;
  }
  return { name, hostIp, podIp, close };
}

describe("container images (scripts/images.sh, Podman)", function () {
  this.timeout(30 * 60_000);
  let built = "";

  before(async function () {
    requireProgram(this, "podman");
    requireProgram(this, "mmdebstrap");
    requireProgram(this, "ip");
    if (process.getuid?.() !== 0) {
      const why = "the images test runs Podman and makes network namespaces as root";
      if (inCI) throw new Error(`required under CI: ${why}`);
      console.warn(`      skipped: ${why}`);
      this.skip();
    }
    const started = Date.now();
    // The Debian base, as on a machine that reaches no registry: nothing but the Debian mirror and
    // npm's registry is asked, as apt-get and npm install ask them.
    const r = await exec(script, ["--base", "debian", ...images], { maxBuffer: 64 << 20 });
    built = `${r.stderr}${r.stdout}`;
    console.log(
      `      scripts/images.sh, ${Math.round((Date.now() - started) / 1000)} s:\n${built.replace(/^/gm, "        ")}`,
    );
  });

  it("builds every image, each running as uid 1000 over code it cannot change", async () => {
    for (const name of images) {
      assert.match(built, new RegExp(`${image(name)}\\s+\\d+ MB`), name);
      const main = name.startsWith("runner") ? "/app/dist/runner/main.mjs" : `/app/dist/${name}/main.mjs`;
      const { stdout } = await exec("podman", [
        "run",
        "--rm",
        "--network",
        "none",
        ...ulimits,
        "--entrypoint",
        '["sh","-c"]',
        image(name),
        `id -u; test -f ${main} && echo main; test -w ${main} || echo read-only; ls /app/node_modules 2>/dev/null | tr '\\n' ' '`,
      ]);
      const [uid, hasMain, readOnly, modules = ""] = stdout.split("\n");
      assert.deepEqual([uid, hasMain, readOnly], ["1000", "main", "read-only"], `${name}: ${stdout}`);
      // Bundles only: of node_modules the runner keeps its native addon, the others nothing.
      assert.equal(modules.trim(), name.startsWith("runner") ? "@lydell" : "", name);
    }
  });

  it("core runs as infra/k8s/base/core.yaml says: uid 1000, read-only, no capabilities, the 0440 signing key readable through fsGroup", async () => {
    const dir = await mkdtemp(join(tmpdir(), "devex-images-core-"));
    const deployment = loadDocs(join(infra, "base/core.yaml")).find((d) => d.kind === "Deployment")!;
    const spec = deployment.spec.template.spec as V1PodSpec;
    const [manifest] = spec.containers;
    // The manifest's container with the embedded setup's settings: no cluster, Redis or S3 here.
    // An unreadable key file would stop core before it answers (loadSigningKey reads it at start).
    const core = {
      ...manifest!,
      image: image("core"),
      envFrom: undefined,
      env: manifest!.env!.filter((e) => e.name === "DEVEX_SIGNING_KEY_FILE"),
    };
    let netns: Awaited<ReturnType<typeof testNetns>> | undefined;
    let pod: PodmanPod | undefined;
    try {
      netns = await testNetns();
      pod = await podmanPod({
        spec: { ...spec, containers: [core] },
        netns: netns.name,
        root: join(dir, "pod"),
        secrets: { "devex-signing-key": { "signing-key.pem": generateSigningKey().privateKeyPem } },
      });
      await pod.start(core);
      const url = `http://${netns.podIp}:8080`;
      const healthy = async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200;
      await waitFor(healthy, 60_000, "core's /healthz").catch(async (err) => {
        throw new Error(`${err.message}; its log:\n${await pod!.logs("core")}`);
      });
      const seen = await pod.exec(
        "core",
        "id -u; id -G; grep CapBnd /proc/self/status; stat -c '%a %U %g' /etc/devex/signing-key/signing-key.pem; touch /app/x 2>&1",
      );
      assert.match(seen, /^1000\n/, seen);
      assert.match(seen, /^1000( 1000)*\n/m, seen);
      assert.match(seen, /^CapBnd:\s+0{16}$/m, seen);
      assert.match(seen, /^440 root 1000$/m, seen);
      assert.match(seen, /touch: cannot touch '\/app\/x': Read-only file system/, seen);
    } finally {
      await pod?.close();
      await netns?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("the runner image as the driver's pod", () => {
    let s3: TestS3;
    let netns: Awaited<ReturnType<typeof testNetns>>;
    let pod: PodmanPod;
    let dir: string;
    const signer = createTokenSigner(generateSigningKey().privateKeyPem);
    const id = {
      replId: `r${randomBytes(5).toString("hex")}`,
      owner: "alice",
      runnerId: `run-${randomBytes(8).toString("hex")}`,
      workspacePrefix: "",
      homePrefix: "",
    };
    id.workspacePrefix = `repl/alice/${id.replId}/`;
    id.homePrefix = `home/alice/${id.replId}/`;
    let settings: ReturnType<typeof testSettings>;
    const store = () => createS3BlobStore(s3.storeOptions);
    const stored = async (prefix: string) => {
      const out: Record<string, string> = {};
      for (const [rel, content] of await readStoredWorkspace(store(), prefix)) out[rel] = content.toString("utf8");
      return out;
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "devex-images-"));
      netns = await testNetns();
      s3 = await startS3("devex-images", netns.hostIp);
      settings = testSettings({
        runnerImage: image("runner-node"),
        imagePullPolicy: "Never",
        s3Env: {
          DEVEX_S3_BUCKET: s3.bucket,
          DEVEX_S3_REGION: "us-east-1",
          DEVEX_S3_ENDPOINT: s3.endpoint,
          DEVEX_S3_FORCE_PATH_STYLE: "true",
        },
        tokenPublicKeyPem: signer.publicKeyPem,
        persist: { mode: "sidecar", intervalSeconds: 300 },
        egress: { ...testSettings().egress, proxy: undefined },
      });
      // What an earlier session stored, persisted by this machine's lib/sync.
      const seed = join(dir, "seed");
      await mkdir(join(seed, "src"), { recursive: true });
      await writeFile(join(seed, "src", "app.js"), "console.log('from the store')\n");
      await persist({ store: store(), prefix: id.workspacePrefix, dir: seed, manifestPath: join(dir, "seed.json") });
      const spec = buildDeployment(settings, id, "http://198.18.0.9:8080").spec!.template.spec!;
      pod = await podmanPod({
        spec,
        netns: netns.name,
        root: join(dir, "pod"),
        secrets: {
          "devex-s3": { DEVEX_S3_ACCESS_KEY_ID: s3.accessKeyId, DEVEX_S3_SECRET_ACCESS_KEY: s3.secretAccessKey },
          [objectName(id.replId)]: {
            "control-token": signer.mint({ aud: "runner-control", sub: id.runnerId, repl: id.replId, scope: [] }, 600),
          },
        },
      });
    });
    after(async () => {
      await pod?.close();
      await s3?.dispose();
      await netns?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("restores the workspace from s3rver with the init container's exact command", async () => {
      const spec = buildDeployment(settings, id, "http://198.18.0.9:8080").spec!.template.spec!;
      const restore = await pod.runToCompletion(spec.initContainers![0]!);
      assert.equal(restore.exitCode, 0, restore.message);
      assert.equal(JSON.parse(restore.message).files, 1, restore.message);
    });

    it("starts read-only as uid 1000 with no capabilities, and answers a terminal through its API", async () => {
      const spec = buildDeployment(settings, id, "http://198.18.0.9:8080").spec!.template.spec!;
      // Another repl's folder on the same volume (as if the node's emptyDir were shared).
      await mkdir(join(dir, "pod", "volumes", "workspaces", "r-other"), { recursive: true });
      await writeFile(join(dir, "pod", "volumes", "workspaces", "r-other", "other-secret.txt"), "not yours\n");
      for (const c of spec.containers) await pod.start(c);
      const url = `http://${netns.podIp}:${RUNNER_PORT}`;
      const healthy = async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200;
      await waitFor(healthy, 60_000, "the runner's /healthz").catch(async (err) => {
        throw new Error(`${err.message}; its log:\n${await pod.logs("runner")}`);
      });
      const token = signer.mint({ aud: "runner", sub: "alice", repl: id.replId, scope: ["terminals"] }, 600);
      const runner = runnerClientsFor(url, { token });
      const terminalId = (await runner.terminals.createTerminal({})).terminal!.terminalId;
      const { output, status } = await runInTerminal(
        runner,
        terminalId,
        "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; pwd; cat src/app.js; " +
          "touch /usr/x /app/x /var/lib/devex-sync/x 2>&1; echo siblings $(ls -A /workspaces | wc -l); " +
          "echo found $(find / -name other-secret.txt 2>/dev/null | wc -l); echo made in the pod > made.txt",
        60_000,
      );
      assert.equal(status, 0, output);
      assert.match(output, /^1000\r?$/m);
      assert.match(output, /^CapEff:\s+0{16}\r?$/m);
      assert.match(output, /^CapBnd:\s+0{16}\r?$/m);
      assert.match(output, /^NoNewPrivs:\s+1\r?$/m);
      assert.match(output, /^\/workspace\r?$/m);
      assert.match(output, /from the store/);
      assert.match(output, /touch: cannot touch '\/usr\/x': Read-only file system/);
      assert.match(output, /touch: cannot touch '\/app\/x': Read-only file system/);
      // The sync state and the other repls' folders of the volume are not in the runner's view.
      assert.match(output, /touch: cannot touch '\/var\/lib\/devex-sync\/x': Read-only file system/);
      assert.match(output, /^siblings 0\r?$/m);
      assert.match(output, /^found 0\r?$/m);
    });

    it("persists through the sidecar (as stop asks it) and through the ephemeral container's command", async () => {
      const admin = signer.mint({ aud: "runner-admin", sub: "core", repl: id.replId, scope: ["persist"] }, 600);
      const url = `http://${netns.podIp}:${PERSIST_PORT}/persist`;
      const refused = await fetch(url, { method: "POST" });
      assert.equal(refused.status, 401);
      const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(await stored(id.workspacePrefix), {
        "src/app.js": "console.log('from the store')\n",
        "made.txt": "made in the pod\n",
      });

      const token = signer.mint({ aud: "runner", sub: "alice", repl: id.replId, scope: ["files"] }, 600);
      const runner = runnerClientsFor(`http://${netns.podIp}:${RUNNER_PORT}`, { token });
      await runner.files.writeFile({ path: "later.txt", content: Buffer.from("after the sidecar\n") });
      const ephemeral = await pod.runToCompletion(buildPersistContainer(settings, id, "persist-1") as never);
      assert.equal(ephemeral.exitCode, 0, ephemeral.message);
      assert.ok(JSON.parse(ephemeral.message).transferred >= 1, ephemeral.message);
      assert.equal((await stored(id.workspacePrefix))["later.txt"], "after the sidecar\n");
    });
  });
});
