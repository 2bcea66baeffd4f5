/**
 * The web gate for TLS (port 443): reads the ClientHello's server name without consuming it, and
 * once the name is judged (web-gate.ts) replays those bytes to the name's address and copies the
 * rest both ways. A name that is not allowed closes the connection without a byte back.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { SNIFF_LIMIT, sniffTlsServerName } from "../../../../../../lib/egress/sniff.js";
import { CONNECT_TIMEOUT_MS, type GateCore, SNIFF_TIMEOUT_MS } from "./web-gate.js";

export function createTlsGate(core: GateCore): Server {
  return createServer((client) => {
    client.on("error", () => {});
    const chunks: Buffer[] = [];
    let size = 0;
    /** Bytes to gather before parsing: the record header's 5, then the whole record it announces. */
    let needed = 5;
    const timer = setTimeout(() => client.destroy(), core.o.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
    client.once("close", () => clearTimeout(timer));
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < Math.min(needed, SNIFF_LIMIT)) return;
      const head = Buffer.concat(chunks, size);
      chunks.splice(0, chunks.length, head);
      const sniffed = sniffTlsServerName(head);
      if (sniffed === "more" && size < SNIFF_LIMIT) {
        needed = 5 + head.readUInt16BE(3);
        return;
      }
      client.off("data", onData);
      client.pause();
      clearTimeout(timer);
      const name = typeof sniffed === "object" && "name" in sniffed ? sniffed.name.toLowerCase() : undefined;
      const none = typeof sniffed === "object" && "none" in sniffed ? sniffed.none : "incomplete ClientHello";
      void pass(core, client, head, name, none);
    };
    client.on("data", onData);
  });
}

async function pass(core: GateCore, client: Socket, head: Buffer, name: string | undefined, none: string) {
  const verdict = await core.judge(name, none);
  if ("refused" in verdict) {
    core.refused(verdict.refused);
    client.destroy();
    return;
  }
  const server = connect({ host: verdict.address, port: 443, timeout: CONNECT_TIMEOUT_MS });
  server.on("error", () => client.destroy());
  server.once("timeout", () => server.destroy());
  server.once("connect", () => {
    server.setTimeout(0);
    core.tunnel(name!, client, server);
    server.write(head);
    client.pipe(server);
    server.pipe(client);
    client.resume();
  });
  client.once("close", () => server.destroy());
  server.once("close", () => client.destroy());
}
