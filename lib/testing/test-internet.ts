/**
 * The egress tests' own internet: two network namespaces made by the test, so that nothing the code
 * under test lets through can leave the machine.
 *
 *   host namespace (the test)        H ("host": core, its repls, pasta, a loopback redis)
 *     no link, no route  ─────x      h0 198.51.100.2/24, default via 198.51.100.1
 *                                     │ veth
 *                                    W ("internet") w0 198.51.100.1/24: DNS on :53; on its lo the
 *                                      test names' addresses (203.0.113.x), 169.254.169.254 and
 *                                      10.99.0.1, each serving HTTP :80, TLS :443 and raw TCP :7000
 *
 * H's only link leads to W, and W has no link at all besides it. The namespaces are unnamed (held by
 * `unshare --net sleep infinity`; no /run/netns entries, no host files or routes touched) and go away
 * with their processes on close. Test code reaches H through `inH`/`spawnInH` (nsenter) and core in
 * H through its Unix socket (test-internet-core.ts).
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../kit/sleep.js";
import { inCI, requireProgram } from "./programs.js";
import type { ServicesConfig } from "./test-internet-services.js";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** W's end of the link: its resolver (DEVEX_EGRESS_DNS) and H's gateway. */
export const internetAddress = "198.51.100.1";
/** H's address on the link (what W sees a repl's traffic come from). */
export const hostAddress = "198.51.100.2";
/** The names W's resolver answers. shared.test shares allowed.test's address, to prove Host/SNI checks. */
export const testNames = {
  "allowed.test": "203.0.113.10",
  "shared.test": "203.0.113.10",
  "other.test": "203.0.113.11",
  "tls.test": "203.0.113.12",
  "registry.test": "203.0.113.13",
} as const;
/** Addresses W carries itself that no policy may reach: the metadata address and a private one. */
export const metadataAddress = "169.254.169.254";
export const privateAddress = "10.99.0.1";
/** The one package registry.test serves. */
export const registryPackage = { host: "registry.test", name: "devex-egress-probe", version: "1.0.0" } as const;
/** The redis-server `startRedisInH` runs on H's loopback. */
export const hostRedisPort = 6379;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestInternet {
  dir: string;
  /** The processes holding H's and W's network namespaces (for nsenter -t). */
  hostPid: number;
  internetPid: number;
  /** The TLS servers' self-signed certificate (PEM), valid for every test name. */
  certPem: string;
  /** Runs a command in H's network namespace; never throws for a failing command. */
  inH(command: string, args: string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** Starts a process in H's network namespace (the rest of its view is the test's). */
  spawnInH(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** A real redis-server on H's 127.0.0.1:6379, for repls to fail to reach. */
  startRedisInH(): Promise<void>;
  /** Kills every process in H and W (core, pasta, servers) and with them the namespaces. */
  close(): Promise<void>;
}

/**
 * Skips the suite (outside CI) or fails it (under CI=true) unless this machine can build the test
 * internet: root, unshare, nsenter, ip, pasta, nft and openssl.
 */
export function requireTestInternet(ctx: Mocha.Context): void {
  if (process.getuid?.() !== 0) {
    const problem = "the egress tests build network namespaces and need root";
    if (inCI) throw new Error(`required under CI: ${problem}`);
    console.warn(`      skipped: ${problem}`);
    ctx.skip();
  }
  for (const program of ["unshare", "nsenter", "ip", "pasta", "nft", "openssl", "redis-server", "redis-cli"])
    requireProgram(ctx, program);
}

export function run(
  command: string,
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: options.timeoutMs ?? 60_000, env: options.env, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function must(command: string, args: string[]): Promise<string> {
  const r = await run(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A process in a network namespace of its own, kept alive until killed. */
async function holdNamespace(): Promise<ChildProcess> {
  const holder = spawn("unshare", ["--net", "sleep", "infinity"], { stdio: "ignore" });
  const self = await readlink("/proc/self/ns/net");
  for (let i = 0; i < 200; i++) {
    const ns = await readlink(`/proc/${holder.pid}/ns/net`).catch(() => self);
    if (ns !== self) return holder;
    if (holder.exitCode !== null) break;
    await sleep(10);
  }
  holder.kill("SIGKILL");
  throw new Error("unshare --net did not make a network namespace");
}

async function link(hostPid: number, internetPid: number): Promise<void> {
  const inH = (args: string[]) => must("nsenter", ["-t", String(hostPid), "-n", "--", "ip", ...args]);
  const inW = (args: string[]) => must("nsenter", ["-t", String(internetPid), "-n", "--", "ip", ...args]);
  await inH(["link", "add", "h0", "type", "veth", "peer", "name", "w0"]);
  await inH(["link", "set", "w0", "netns", `/proc/${internetPid}/ns/net`]);
  for (const args of [
    ["link", "set", "lo", "up"],
    ["addr", "add", `${hostAddress}/24`, "dev", "h0"],
    ["link", "set", "h0", "up"],
    ["route", "add", "default", "via", internetAddress],
  ])
    await inH(args);
  const own = [...new Set([...Object.values(testNames), metadataAddress, privateAddress])];
  for (const args of [
    ["link", "set", "lo", "up"],
    ["addr", "add", `${internetAddress}/24`, "dev", "w0"],
    ["link", "set", "w0", "up"],
    ...own.map((a) => ["addr", "add", `${a}/32`, "dev", "lo"]),
  ])
    await inW(args);
}

/** The TLS certificate for every test name, made with openssl in `dir`. */
async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const san = Object.keys(testNames)
    .map((n) => `DNS:${n}`)
    .join(",");
  await must("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=test internet"],
    ...["-addext", `subjectAltName=${san}`],
  ]);
  return { cert, key };
}

/** registry.test's package, packed with npm from a folder written here. */
async function makePackage(dir: string): Promise<string> {
  const src = join(dir, "package-src");
  await mkdir(src);
  const { name, version } = registryPackage;
  await writeFile(join(src, "package.json"), JSON.stringify({ name, version, main: "index.js", license: "MIT" }));
  await writeFile(join(src, "index.js"), 'module.exports = "served by the test registry";\n');
  await must("npm", ["pack", "--silent", "--pack-destination", dir, src]);
  return join(dir, `${name}-${version}.tgz`);
}

/** Starts the servers in W and waits for their "ready". */
async function startServices(dir: string, internetPid: number): Promise<ChildProcess> {
  const config: ServicesConfig = {
    names: testNames,
    tls: await makeCertificate(dir),
    registry: { ...registryPackage, tarball: await makePackage(dir) },
  };
  await writeFile(join(dir, "services.json"), JSON.stringify(config));
  const script = join(repoRoot, "lib/testing/test-internet-services.ts");
  const child = spawn(
    "nsenter",
    ["-t", String(internetPid), "-n", "--", process.execPath, "--import", "tsx", script, join(dir, "services.json")],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the test internet's servers did not start: ${output}`)), 60_000);
    const seen = (d: Buffer) => {
      output += d;
      if (output.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the test internet's servers exited (${code}): ${output}`));
    });
  });
  return child;
}

/** SIGKILLs every process in the holder's network namespace, then the holder, and waits for it. */
async function killNamespace(holder: ChildProcess): Promise<void> {
  if (holder.exitCode !== null || holder.signalCode !== null) return;
  const exited = new Promise((resolve) => holder.once("exit", resolve));
  await killOthersIn(holder.pid!);
  holder.kill("SIGKILL");
  await exited;
}

async function killOthersIn(holderPid: number): Promise<void> {
  const ns = await readlink(`/proc/${holderPid}/ns/net`).catch(() => undefined);
  if (!ns) return;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === holderPid) continue;
    if ((await readlink(`/proc/${entry}/ns/net`).catch(() => "")) === ns) {
      try {
        process.kill(Number(entry), "SIGKILL");
      } catch {}
    }
  }
}

export async function startTestInternet(): Promise<TestInternet> {
  const dir = await mkdtemp(join(tmpdir(), "devex-test-internet-"));
  const holders: ChildProcess[] = [];
  const close = async () => {
    for (const h of holders) await killNamespace(h);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    holders.push(await holdNamespace(), await holdNamespace());
    const [hostPid, internetPid] = holders.map((h) => h.pid!) as [number, number];
    await link(hostPid, internetPid);
    await startServices(dir, internetPid);
    const nsenter = (command: string, args: string[]) => ["-t", String(hostPid), "-n", "--", command, ...args];
    const net: TestInternet = {
      dir,
      hostPid,
      internetPid,
      certPem: await readFile(join(dir, "cert.pem"), "utf8"),
      inH: (command, args, options) => run("nsenter", nsenter(command, args), options),
      spawnInH: (command, args, options = {}) => spawn("nsenter", nsenter(command, args), options),
      startRedisInH: () => startRedisIn(net, dir),
      close,
    };
    return net;
  } catch (err) {
    await close();
    throw err;
  }
}

async function startRedisIn(net: TestInternet, dir: string): Promise<void> {
  const port = String(hostRedisPort);
  net.spawnInH(
    "redis-server",
    ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  for (let i = 0; i < 100; i++) {
    if ((await net.inH("redis-cli", ["-p", port, "ping"])).stdout.includes("PONG")) return;
    await sleep(100);
  }
  throw new Error("redis-server in H did not answer PING");
}
