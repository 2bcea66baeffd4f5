/**
 * The web gate for plain HTTP (port 80): an HTTP/1 server that judges every request by its
 * absolute URI's host, else its Host header (web-gate.ts), and forwards it to the name's address
 * with its method, path, headers and body as sent, streaming both ways. Keep-alive works on both
 * sides and each request is judged on its own. An Upgrade (WebSocket) is judged the same way and
 * then copied as bytes. Refusals are `403 Forbidden` with the reason in the body.
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { connect, type Server, type Socket } from "node:net";
import { normalizeName } from "../../../../../../lib/egress/policy.js";
import { SNIFF_LIMIT } from "../../../../../../lib/egress/sniff.js";
import { CONNECT_TIMEOUT_MS, type GateCore, SNIFF_TIMEOUT_MS } from "./web-gate.js";

/** The host a request names (absolute URI first, as proxies and CDNs route by it), without port. */
function requestedName(req: IncomingMessage): { name?: string; none: string; path: string } {
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(req.url ?? "");
  const authority = absolute ? absolute[1]!.replace(/^[^@]*@/, "") : req.headers.host;
  const path = absolute ? absolute[2] || "/" : (req.url ?? "/");
  if (!authority) return { none: "no Host header", path };
  const name = normalizeName(authority.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1"));
  return { name, none: "", path };
}

const forbiddenText = (why: string) => {
  const body = `Devex: ${why}.\n`;
  return `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
};

/** Header pairs from a raw list (names' case and order as the client wrote them). */
function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

export function createHttpGate(core: GateCore): Server {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const headersTimeout = core.o.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS;
  const options = {
    maxHeaderSize: SNIFF_LIMIT,
    requireHostHeader: false,
    headersTimeout,
    // A request's body may take as long as it takes (an upload); only the head has a deadline.
    requestTimeout: 0,
    // How often Node looks for late heads (its default, 30 s, would let a slow client stay long).
    connectionsCheckingInterval: Math.min(1000, headersTimeout / 2),
  };
  const server = createServer(options, (req, res) => void forward(core, agent, req, res));
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return void socket.destroy();
    const why = err.code === "HPE_HEADER_OVERFLOW" ? "request head too long" : "not an HTTP/1 request";
    core.refused(why);
    if (socket.writable) socket.end(forbiddenText(`no name to check (${why})`));
    else socket.destroy();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => void upgrade(core, req, socket, head));
  server.on("close", () => agent.destroy());
  return server;
}

async function forward(core: GateCore, agent: Agent, req: IncomingMessage, res: ServerResponse) {
  const { name, none, path } = requestedName(req);
  const verdict = await core.judge(name, none);
  if ("refused" in verdict) {
    core.refused(verdict.refused);
    // Through the response, so pipelined requests before it still get their answers, in order.
    const body = `Devex: ${verdict.refused}.\n`;
    res.shouldKeepAlive = false;
    res.writeHead(403, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
    req.resume();
    return;
  }
  const upstream = request({
    host: verdict.address,
    port: 80,
    method: req.method,
    path,
    headers: req.rawHeaders,
    setHost: false,
    agent,
    timeout: CONNECT_TIMEOUT_MS,
  });
  upstream.once("timeout", () => upstream.destroy(new Error("upstream timed out")));
  upstream.on("response", (answer) => {
    upstream.setTimeout(0);
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
    answer.pipe(res);
  });
  upstream.on("error", () => {
    if (!res.headersSent)
      res.writeHead(502, { "Content-Type": "text/plain" }).end("Devex: the server did not answer.\n");
    else res.destroy();
  });
  res.once("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

async function upgrade(core: GateCore, req: IncomingMessage, client: Socket, head: Buffer) {
  client.on("error", () => {});
  const { name, none, path } = requestedName(req);
  const verdict = await core.judge(name, none);
  if ("refused" in verdict) {
    core.refused(verdict.refused);
    client.end(forbiddenText(verdict.refused));
    return;
  }
  const server = connect({ host: verdict.address, port: 80, timeout: CONNECT_TIMEOUT_MS });
  server.on("error", () => client.destroy());
  server.once("timeout", () => server.destroy());
  server.once("connect", () => {
    server.setTimeout(0);
    core.tunnel(name!, client, server);
    const lines = pairs(req.rawHeaders).map(([k, v]) => `${k}: ${v}\r\n`);
    server.write(`${req.method} ${path} HTTP/${req.httpVersion}\r\n${lines.join("")}\r\n`);
    if (head.length) server.write(head);
    client.pipe(server);
    server.pipe(client);
  });
  client.once("close", () => server.destroy());
  server.once("close", () => client.destroy());
}
