/**
 * lib/egress/sniff.ts: the name a connection asks for, from a real ClientHello (Node's own TLS client
 * talking to a server on 127.0.0.1 that records its first bytes); partial input asks for more, and malformed input (random mutations of a real ClientHello) never throws.
 */
import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { sniffTlsServerName } from "./sniff.js";

/** The first record Node's TLS client sends (its ClientHello), with or without a server name. */
async function captureClientHello(servername?: string): Promise<Buffer> {
  let received = Buffer.alloc(0);
  const hello = new Promise<Buffer>((resolve) => {
    const server = createServer((s) => {
      s.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 5 && received.length >= 5 + received.readUInt16BE(3)) {
          s.destroy();
          server.close();
          resolve(received.subarray(0, 5 + received.readUInt16BE(3)));
        }
      });
    });
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      const client = tlsConnect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
      client.on("error", () => {});
    });
  });
  return hello;
}

describe("sniff: TLS server name", () => {
  let named: Buffer;
  let unnamed: Buffer;
  before(async () => {
    named = await captureClientHello("a.example.test");
    unnamed = await captureClientHello(undefined);
  });

  it("reads the server name of a real ClientHello", () => {
    assert.equal(named[0], 0x16);
    assert.deepEqual(sniffTlsServerName(named), { name: "a.example.test" });
  });

  it("finds none in a ClientHello to an IP address (Node sends no SNI then)", () => {
    const r = sniffTlsServerName(unnamed);
    assert.ok(typeof r === "object" && "none" in r, JSON.stringify(r));
    assert.match(r.none, /no server name/);
  });

  it("asks for more until the whole record has arrived, then names it", () => {
    for (const cut of [0, 1, 4, 5, 6, 40, named.length - 1]) {
      assert.equal(sniffTlsServerName(named.subarray(0, cut)), "more", `cut at ${cut}`);
    }
    // Chunks arriving one after another, as the gate concatenates them.
    let head = Buffer.alloc(0);
    const results = [];
    for (let at = 0; at < named.length; at += 37) {
      head = Buffer.concat([head, named.subarray(at, at + 37)]);
      results.push(sniffTlsServerName(head));
    }
    assert.deepEqual(results.at(-1), { name: "a.example.test" });
    assert.ok(results.slice(0, -1).every((r) => r === "more"));
  });

  it("says what is not TLS, and not a ClientHello", () => {
    assert.deepEqual(sniffTlsServerName(Buffer.from("GET / HTTP/1.1\r\n")), { none: "not a TLS handshake" });
    const serverHello = Buffer.from(named);
    serverHello[5] = 2;
    assert.deepEqual(sniffTlsServerName(serverHello), { none: "not a ClientHello" });
  });

  it("never throws on a few thousand random mutations of a real ClientHello", function () {
    this.timeout(60_000);
    let seed = 22;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const outcomes = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(named);
      const flips = 1 + Math.floor(random() * 8);
      for (let f = 0; f < flips; f++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? Math.floor(random() * b.length) : b.length;
      const r = sniffTlsServerName(b.subarray(0, cut));
      assert.ok(r === "more" || "name" in r || "none" in r);
      outcomes.add(r === "more" ? "more" : Object.keys(r)[0]!);
    }
    // The mutations reached every outcome, so the fuzz exercised the malformed paths too.
    assert.deepEqual([...outcomes].sort(), ["more", "name", "none"]);
  });
});
