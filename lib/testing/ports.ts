/**
 * Free loopback TCP ports for tests that hand a port to a program that binds it later. The port
 * can still be taken by someone else before then; callers that start several listeners ask for
 * all their ports at once, so at least they never collide with each other (asked one at a time,
 * the kernel may hand the same port out twice, as it did to etcd's peer and the API server).
 */
import { createServer, type Server } from "node:net";

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

/** `count` distinct TCP ports that were free a moment ago: each is held until all are chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listen());
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
