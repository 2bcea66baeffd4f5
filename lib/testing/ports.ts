/**
 * Free loopback TCP ports for tests that hand a port to a program that binds it later. Ports are
 * chosen below the kernel's ephemeral range: a port from inside it can be taken by any outgoing
 * connection on the machine before the program binds it (CI saw core's preview port taken that
 * way). Callers that start several listeners ask for all their ports at once, so they never collide
 * with each other.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

/** The lowest port handed out here: below it live well-known and registered services. */
const LOWEST = 10_000;

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" ? resolve(undefined) : reject(e)));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

/** The kernel's ephemeral port range (Linux), or undefined where it cannot be read. */
export function ephemeralRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return low && high ? [low, high] : undefined;
  } catch {
    return undefined;
  }
}

/** A listener on a free port outside the ephemeral range, or on any free port when there is no room below it. */
async function listenOutsideEphemeral(): Promise<Server> {
  const low = ephemeralRange()?.[0] ?? 0;
  for (let attempt = 0; low - LOWEST > 1_000 && attempt < 50; attempt++) {
    const server = await listen(LOWEST + Math.floor(Math.random() * (low - LOWEST)));
    if (server) return server;
  }
  const server = await listen(0);
  if (!server) throw new Error("no free loopback port");
  return server;
}

/** `count` distinct TCP ports that were free a moment ago: each is held until all are chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOutsideEphemeral());
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
