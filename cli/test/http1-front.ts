/**
 * A reverse proxy in front of core that speaks only HTTP/1.1 (node:http; WebSocket upgrades are
 * piped through), as some proxies and load balancers do: the HTTP/2 connection preface of h2c
 * cannot pass it. Core names runners by its own URL (StartRepl's RunnerAccess.url), as a deployment
 * with DEVEX_PUBLIC_URL would name the front, so the front puts its own origin in StartRepl's answer
 * (same length: both listen on 5-digit ports). It records what passed, so tests can tell the CLI's
 * calls really went through it.
 */
import { createServer, type IncomingMessage, request } from "node:http";
import { connect } from "node:net";

export interface Http1Front {
  url: string;
  /** "METHOD path" of every request and upgrade that passed. */
  seen: string[];
  close(): Promise<void>;
}

export async function startHttp1Front(coreUrl: string): Promise<Http1Front> {
  const core = new URL(coreUrl);
  const seen: string[] = [];
  let own = "";
  const tunnels = new Set<{ destroy(): void }>();
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const rewrite = req.url?.endsWith("/StartRepl") ?? false;
    const headers = { ...req.headers };
    // An uncompressed answer, so the rewrite can find core's origin in it.
    if (rewrite) delete headers["accept-encoding"];
    const upstream = request(
      { host: core.hostname, port: core.port, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!rewrite) answer.pipe(res);
        else void readAll(answer).then((body) => res.end(replaceAll(body, core.host, own)));
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req: IncomingMessage, socket, head) => {
    seen.push(`UPGRADE ${req.url}`);
    const upstream = connect(Number(core.port), core.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    tunnels.add(socket).add(upstream);
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  for (;;) {
    await new Promise<void>((resolve) => server.listen(0, core.hostname, resolve));
    const port = (server.address() as { port: number }).port;
    own = `${core.hostname}:${port}`;
    if (own.length === core.host.length) break;
    await new Promise((resolve) => server.close(resolve));
  }
  return {
    url: `http://${own}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const t of tunnels) t.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function replaceAll(body: Buffer, from: string, to: string): Buffer {
  return Buffer.from(body.toString("latin1").split(from).join(to), "latin1");
}
