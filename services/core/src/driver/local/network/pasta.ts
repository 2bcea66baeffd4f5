/**
 * pasta (from passt) gives a repl's private network namespace a route out: a tap device inside it,
 * whose traffic pasta carries over ordinary sockets in core's namespace (user-mode networking, no
 * privileges, no host routes or bridges). Chosen over slirp4netns by measurement on this machine:
 * about 690 MB/s against 360 MB/s for a download inside a namespace (the host's own: 1.3 GB/s).
 *
 * Flags: IPv4 only; no port forwarding into the namespace (-t/-u none), so nothing outside reaches a
 * repl's servers; only the resolver's and the web gate's ports forwarded out to core's loopback
 * (-T/-U), and the gateway not mapped to the host (--no-map-gw), so the host's loopback stays out of
 * reach. It runs in the foreground and is killed with the runner's network.
 *
 * Privileges: pasta needs /dev/net/tun (0600 root on some hosts) and CAP_SYS_ADMIN over the
 * namespace, which bubblewrap puts under a user namespace no process of the sandbox stays in (the
 * runner's own is nested below it, for the uid 1000 mapping). So with core as root pasta joins the
 * namespace through a descriptor core opened (--netns /proc/self/fd/3) as root, keeping only
 * CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN in its own mount namespace under its
 * seccomp filter (its --runas 0: it cannot drop to another uid and still enter the namespace).
 * Without root there is no way in (network/egress.ts says so at start): pasta would have to create
 * the namespaces itself, around the runner's bwrap, and /dev/net/tun would have to be 0666.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { NS_PORTS } from "./nft-rules.js";

/** Core's loopback ports the namespace's forwarded ports lead to. */
export interface GatePorts {
  dns: number;
  dnsTcp: number;
  http: number;
  tls: number;
}

export interface PastaOptions {
  pasta: string;
  /** The namespace, as a descriptor core holds. */
  netns: number;
  /** A process in the namespace (the runner, its sandbox's pid 1), whose routes show pasta is up. */
  pid: number;
  ports: GatePorts;
  signal: AbortSignal;
}

/** pasta's arguments; it joins the namespace by the descriptor it inherits as fd 3. */
export function pastaArgs(ports: GatePorts): string[] {
  return [
    "--config-net",
    "--ipv4-only",
    "--foreground",
    "--quiet",
    "--no-map-gw",
    ...["--tcp-ports", "none", "--udp-ports", "none"],
    ...["--tcp-ns", `${NS_PORTS.http}:${ports.http},${NS_PORTS.tls}:${ports.tls},${NS_PORTS.dns}:${ports.dnsTcp}`],
    ...["--udp-ns", `${NS_PORTS.dns}:${ports.dns}`],
    ...["--runas", "0", "--netns-only", "--netns", "/proc/self/fd/3"],
  ];
}

/** Starts pasta and resolves once the namespace has its default route; rejects if pasta exits first. */
export async function startPasta(o: PastaOptions): Promise<ChildProcess> {
  let output = "";
  const child = spawn(o.pasta, pastaArgs(o.ports), { stdio: ["ignore", "pipe", "pipe", o.netns] });
  for (const s of [child.stdout, child.stderr]) s?.on("data", (c: Buffer) => (output = (output + c).slice(-2000)));
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code, sig) => reject(new Error(`pasta exited (${sig ?? code}): ${clean(output)}`))),
  );
  exited.catch(() => {});
  try {
    await Promise.race([waitForRoute(o.pid, AbortSignal.any([o.signal, AbortSignal.timeout(10_000)])), exited]);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  child.stdout?.destroy();
  return child;
}

/** A pasta process as the runner's record names it: its pid and its start time (so a reused pid is not it). */
export interface PastaProcess {
  pid: number;
  start: string;
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22), "" when it is gone. */
export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** pasta's messages without syslog noise. */
function clean(text: string): string {
  return text
    .split("\n")
    .filter((l) => l && !l.startsWith("Failed to send"))
    .join("; ");
}

/** Polls the namespace's routing table (as /proc shows it for a process inside) for a default route. */
async function waitForRoute(pid: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    const table = await readFile(`/proc/${pid}/net/route`, "utf8").catch(() => "");
    if (table.split("\n").some((line) => line.split("\t")[1] === "00000000")) return;
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 5));
  }
}
