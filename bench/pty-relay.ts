/**
 * Floors for the runner benchmark: the least a networked terminal can cost on this machine. A
 * separate process owns each PTY (as the runner does) and relays its bytes, with no framing, auth,
 * batching, scrollback or flow control, over
 *   tcp — one TCP connection per terminal (the process hop alone), or
 *   h2  — one node:http2 stream per terminal (the process hop plus Node's HTTP/2, which every gRPC
 *         server in Node, connect-node and grpc-js alike, is built on).
 * The command comes as the first line (tcp) or the `x-command` header (h2), JSON-encoded.
 * Usage: node --import tsx bench/pty-relay.ts tcp|h2; prints "listening on <port>".
 */

import { createServer as createH2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer } from "node:net";
import { type IPty, spawn } from "@lydell/node-pty";

const mode = process.argv[2];

function open(command: string[]): IPty {
  return spawn(command[0], command.slice(1), { cols: 80, rows: 24, encoding: null, env: process.env });
}

function announce(address: AddressInfo | string | null) {
  console.log(`listening on ${(address as AddressInfo).port}`);
}

if (mode === "tcp") {
  const server = createTcpServer({ noDelay: true }, (socket) => {
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      socket.off("data", onHead);
      const pty = open(JSON.parse(head.subarray(0, nl).toString()));
      pty.onData((d) => socket.write(d as unknown as Buffer));
      pty.onExit(() => socket.end());
      socket.on("data", (d) => pty.write(d as unknown as string));
      socket.on("close", () => pty.kill("SIGKILL"));
      socket.on("error", () => socket.destroy());
    };
    socket.on("data", onHead);
  });
  server.listen(0, "127.0.0.1", () => announce(server.address()));
} else if (mode === "h2") {
  const server = createH2Server();
  server.on("stream", (stream, headers) => {
    const pty = open(JSON.parse(String(headers["x-command"])));
    stream.respond({ ":status": 200 });
    pty.onData((d) => stream.write(d));
    pty.onExit(() => stream.end());
    stream.on("data", (d: Buffer) => pty.write(d as unknown as string));
    stream.on("close", () => pty.kill("SIGKILL"));
    stream.on("error", () => stream.destroy());
  });
  server.listen(0, "127.0.0.1", () => announce(server.address()));
} else {
  console.error("usage: pty-relay.ts tcp|h2");
  process.exit(2);
}
