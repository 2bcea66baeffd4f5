/**
 * A loopback HTTP forwarder that adds "Authorization: Bearer <token>" to every request, for
 * clients that cannot send a header of their own (the MCP conformance suite). Everything else
 * passes as it came, Host and Origin included, so the server judges the client's own headers;
 * bodies and SSE streams flow without buffering, and a client that hangs up closes the
 * upstream request too (a dropped connection looks the same to the server as without it).
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface BearerForwarder {
  /** The forwarder's base URL (http://127.0.0.1:<port>). */
  url: string;
  close(): Promise<void>;
}

export async function startBearerForwarder(target: string, token: string): Promise<BearerForwarder> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, authorization: `Bearer ${token}` },
      },
      (back) => {
        res.writeHead(back.statusCode ?? 502, back.headers);
        res.flushHeaders();
        back.pipe(res);
      },
    );
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on("close", () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
