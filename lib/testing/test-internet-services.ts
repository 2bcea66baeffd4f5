/**
 * The test internet's servers, run inside its namespace by test-internet.ts
 * (`node --import tsx test-internet-services.ts <config.json>`), on every address the namespace has:
 *
 *  - DNS on UDP and TCP port 53: the names in `config.names`;
 *  - HTTP on 80 and TLS on 443: "hello <Host> at <address>" (so a client sees which name and address
 *    it reached), `/bytes/<n>` for n bytes, and as registry.test a minimal npm registry for one package;
 *  - raw TCP on 7000: "tcp <address>" and close.
 *
 * Prints "ready" on stdout once everything listens.
 */
import { createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type Server } from "node:net";
import { answer } from "./test-internet-dns.js";

export interface ServicesConfig {
  names: Record<string, string>;
  tls: { cert: string; key: string };
  registry: { host: string; name: string; version: string; tarball: string };
}

const config = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as ServicesConfig;
const tarball = readFileSync(config.registry.tarball);
const chunk = Buffer.alloc(64 * 1024, "x");

function serve(req: IncomingMessage, res: ServerResponse): void {
  const host = (req.headers.host ?? "").replace(/:\d+$/, "");
  const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
  if (host === config.registry.host) registry(req, res);
  else if (bytes) sendBytes(res, Number(bytes[1]));
  else {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello ${host} at ${req.socket.localAddress}\n`);
  }
}

function sendBytes(res: ServerResponse, n: number): void {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/** The package document and the tarball of one package, as registry.npmjs.org serves them. */
function registry(req: IncomingMessage, res: ServerResponse): void {
  const { name, version, host } = config.registry;
  const file = `${name}-${version}.tgz`;
  if (req.url === `/${name}`) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        name,
        "dist-tags": { latest: version },
        versions: {
          [version]: {
            name,
            version,
            dist: {
              tarball: `http://${host}/${name}/-/${file}`,
              shasum: createHash("sha1").update(tarball).digest("hex"),
              integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
            },
          },
        },
      }),
    );
  } else if (req.url === `/${name}/-/${file}`) {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": tarball.length });
    res.end(tarball);
  } else {
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":"not found"}');
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", resolve);
  });
}

const dnsUdp = createSocket("udp4", (msg, from) => dnsUdp.send(answer(msg, config.names), from.port, from.address));
const dnsTcp = createTcpServer((socket) => {
  let buffered = Buffer.alloc(0);
  socket.on("error", () => {});
  socket.on("data", (d) => {
    buffered = Buffer.concat([buffered, d]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const reply = answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), config.names);
      buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      socket.write(Buffer.concat([len, reply]));
    }
  });
});
const tls = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
const rawTcp = createTcpServer((socket) => {
  socket.on("error", () => {});
  socket.end(`tcp ${socket.localAddress}\n`);
});

await new Promise<void>((resolve, reject) => {
  dnsUdp.once("error", reject);
  dnsUdp.bind(53, "0.0.0.0", resolve);
});
await Promise.all([
  listen(dnsTcp, 53),
  listen(createHttpServer(serve), 80),
  listen(createHttpsServer(tls, serve), 443),
  listen(rawTcp, 7000),
]);
process.stdout.write("ready\n");
