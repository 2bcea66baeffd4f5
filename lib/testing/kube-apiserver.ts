/**
 * A real Kubernetes control plane on loopback for tests: etcd (Debian's etcd-server), the
 * kube-apiserver and kube-controller-manager built by scripts/kube-apiserver-build.sh (1.20.2, from
 * Debian's source package). RBAC on, a static token file (an admin in system:masters), service
 * account tokens signed with a key made here, OwnerReferencesPermissionEnforcement among the
 * admission plugins. There is no scheduler or kubelet: pods are created, admitted or refused, and
 * stay Pending; the controllers (Deployment, ReplicaSet, garbage collector, quota, service-account
 * tokens) run for real.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { freePorts } from "./ports.js";

export const KUBE_VERSION = "1.20.2";

/** Where scripts/kube-apiserver-build.sh leaves the binaries (undefined until it ran). */
export function kubeBinaries(): string | undefined {
  const dir = join(
    process.env.DEVEX_TOOLS_CACHE ?? join(homedir(), ".cache", "devex-tools"),
    `kubernetes-${KUBE_VERSION}`,
    "bin",
  );
  return existsSync(join(dir, "kube-apiserver")) && existsSync(join(dir, "kube-controller-manager")) ? dir : undefined;
}

export interface RealKube {
  url: string;
  adminToken: string;
  /** A KubeConfig for the API server with this bearer token (the admin's by default). */
  kubeConfig(token?: string): KubeConfig;
  close(): Promise<void>;
}

function start(name: string, program: string, args: string[], log: string[]): ChildProcess {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  const keep = (d: Buffer) => {
    log.push(`${name}: ${d.toString().trimEnd()}`);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return child;
}

/** GET /readyz's status, or 0 (the serving certificate is the API server's own, self-signed). */
function readyz(url: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpsGet(
      `${url}/readyz`,
      { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}

async function waitHealthy(url: string, token: string, log: string[], children: ChildProcess[]) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`a control-plane process exited:\n${log.slice(-40).join("\n")}`);
    if ((await readyz(url, token)) === 200) return;
    if (Date.now() > deadline) throw new Error(`the API server was not ready in 60 s:\n${log.slice(-40).join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Starts the control plane; when one of its ports was taken between choosing it and binding it
 * (other tests pick ports too), starts again on new ports rather than failing the suite.
 */
export async function startKubeApiServer(bin: string): Promise<RealKube> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bin);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
    }
  }
}

async function startOnce(bin: string): Promise<RealKube> {
  const dir = await mkdtemp(join(tmpdir(), "devex-kube-"));
  const log: string[] = [];
  const children: ChildProcess[] = [];
  const [etcdClient, etcdPeer, apiPort] = await freePorts(3);
  const adminToken = randomBytes(24).toString("hex");
  await writeFile(join(dir, "tokens.csv"), `${adminToken},admin,admin,"system:masters"\n`);
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(join(dir, "sa.key"), sa.privateKey.export({ type: "pkcs8", format: "pem" }));
  await writeFile(join(dir, "sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));
  const url = `https://127.0.0.1:${apiPort}`;
  const kubeConfig = (token = adminToken) => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "real", server: url, skipTLSVerify: true }],
      users: [{ name: "user", token }],
      contexts: [{ name: "real", cluster: "real", user: "user" }],
      currentContext: "real",
    });
    return kc;
  };
  try {
    children.push(
      start(
        "etcd",
        "etcd",
        [
          "--data-dir",
          join(dir, "etcd"),
          "--listen-client-urls",
          `http://127.0.0.1:${etcdClient}`,
          "--advertise-client-urls",
          `http://127.0.0.1:${etcdClient}`,
          "--listen-peer-urls",
          `http://127.0.0.1:${etcdPeer}`,
          "--initial-advertise-peer-urls",
          `http://127.0.0.1:${etcdPeer}`,
          "--initial-cluster",
          `default=http://127.0.0.1:${etcdPeer}`,
        ],
        log,
      ),
    );
    children.push(
      start(
        "kube-apiserver",
        join(bin, "kube-apiserver"),
        [
          `--etcd-servers=http://127.0.0.1:${etcdClient}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          "--insecure-port=0",
          `--cert-dir=${join(dir, "certs")}`,
          `--token-auth-file=${join(dir, "tokens.csv")}`,
          "--authorization-mode=RBAC",
          `--service-account-key-file=${join(dir, "sa.pub")}`,
          `--service-account-signing-key-file=${join(dir, "sa.key")}`,
          "--service-account-issuer=https://kubernetes.default.svc",
          "--service-cluster-ip-range=10.96.0.0/12",
          "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ResourceQuota,OwnerReferencesPermissionEnforcement",
          "--allow-privileged=false",
        ],
        log,
      ),
    );
    await waitHealthy(url, adminToken, log, children);
    const kc = kubeConfig();
    const kcFile = join(dir, "admin.kubeconfig");
    await writeFile(kcFile, kc.exportConfig());
    children.push(
      start(
        "kube-controller-manager",
        join(bin, "kube-controller-manager"),
        [
          `--kubeconfig=${kcFile}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          "--port=0",
          "--secure-port=0",
          `--service-account-private-key-file=${join(dir, "sa.key")}`,
          "--use-service-account-credentials=false",
          "--controllers=*",
          "--concurrent-gc-syncs=5",
        ],
        log,
      ),
    );
  } catch (err) {
    for (const c of children) c.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    adminToken,
    kubeConfig,
    async close() {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null) return resolve();
              c.once("exit", () => resolve());
              c.kill("SIGTERM");
              setTimeout(() => c.kill("SIGKILL"), 5000).unref();
            }),
        ),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}
