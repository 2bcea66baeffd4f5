/**
 * A loopback HTTP forwarder that adds "Authorization: Bearer <token>" to every request, for
 * clients that cannot send a header of their own (the MCP conformance suite). Everything else
 * passes as it came, Host and Origin included, so the server judges the client's own headers;
 * bodies and SSE streams flow without buffering, and a client that hangs up closes the
 * upstream request too (a dropped connection looks the same to the server as without it).
 * cut() drops every open connection at once, as a network failure would.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface BearerForwarder {
  /** The forwarder's base URL (http://127.0.0.1:<port>). */
  url: string;
  /** Destroys every open client connection (and with it each one's upstream request); how many. */
  cut(): number;
  /** The requests forwarded so far: method and Last-Event-ID (resumptions). */
  requests: { method: string; lastEventId?: string }[];
  close(): Promise<void>;
}

export async function startBearerForwarder(target: string, token: string): Promise<BearerForwarder> {
  const upstream = new URL(target);
  const requests: BearerForwarder["requests"] = [];
  const server: Server = createServer((req, res) => {
    const lastEventId = req.headers["last-event-id"];
    requests.push({ method: req.method ?? "", lastEventId: typeof lastEventId === "string" ? lastEventId : undefined });
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
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    cut: () => {
      const open = sockets.size;
      for (const socket of sockets) socket.destroy();
      return open;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
