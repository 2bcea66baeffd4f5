/**
 * upstream.ts: resolver addresses as DEVEX_EGRESS_DNS and resolv.conf write them, and forwardQuery
 * against UDP servers on 127.0.0.1 (a silent one, one answering with the wrong id, one answering).
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forwardQuery, parseServer, upstreamServers } from "./upstream.js";

describe("upstream resolvers: addresses", () => {
  it("parses IPv4 and IPv6, with and without a port", () => {
    assert.deepEqual(parseServer("203.0.113.53"), { address: "203.0.113.53", port: 53 });
    assert.deepEqual(parseServer(" 203.0.113.53:5353 "), { address: "203.0.113.53", port: 5353 });
    assert.deepEqual(parseServer("2001:db8::53"), { address: "2001:db8::53", port: 53 });
    assert.deepEqual(parseServer("[2001:db8::53]:5353"), { address: "2001:db8::53", port: 5353 });
    assert.deepEqual(parseServer("[2001:db8::53]"), { address: "2001:db8::53", port: 53 });
  });

  it("refuses names, bad ports and malformed forms", () => {
    for (const bad of [
      "",
      "dns.example.test",
      "dns.example.test:53",
      "203.0.113.53:0",
      "203.0.113.53:65536",
      "203.0.113.53:port",
      "203.0.113",
      "[203.0.113.53]x",
      "2001:db8::53]:53",
      "[not-an-address]:53",
    ])
      assert.equal(parseServer(bad), undefined, bad);
  });

  describe("from settings", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "devex-upstream-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("prefers DEVEX_EGRESS_DNS (comma separated) over resolv.conf", () => {
      const conf = join(dir, "resolv.conf");
      writeFileSync(conf, "nameserver 198.51.100.1\n");
      assert.deepEqual(upstreamServers("127.0.0.1:5300, [::1]:5301,", conf), [
        { address: "127.0.0.1", port: 5300 },
        { address: "::1", port: 5301 },
      ]);
    });

    it("reads every nameserver line of resolv.conf, skipping comments and other options", () => {
      const conf = join(dir, "resolv.conf");
      writeFileSync(
        conf,
        [
          "# written by the test",
          "search example.test",
          "nameserver 198.51.100.1",
          "  nameserver\t2001:db8::1  # trailing",
          "options ndots:2 timeout:1",
          "#nameserver 198.51.100.99",
          "nameserver 198.51.100.2",
        ].join("\n"),
      );
      assert.deepEqual(upstreamServers("", conf), [
        { address: "198.51.100.1", port: 53 },
        { address: "2001:db8::1", port: 53 },
        { address: "198.51.100.2", port: 53 },
      ]);
    });

    it("has none for a missing resolv.conf, and names a bad entry", () => {
      assert.deepEqual(upstreamServers("", join(dir, "absent")), []);
      assert.throws(
        () => upstreamServers("127.0.0.1, dns.example.test"),
        /dns\.example\.test" is not a resolver address/,
      );
      const conf = join(dir, "bad.conf");
      writeFileSync(conf, "nameserver resolver.example.test\n");
      assert.throws(() => upstreamServers("", conf), /"resolver.example.test"/);
    });
  });
});

/** A UDP server on 127.0.0.1 that records what it receives and answers with `reply` (or not at all). */
async function udpServer(reply?: (msg: Buffer) => Buffer): Promise<{ socket: Socket; port: number; got: Buffer[] }> {
  const socket = createSocket("udp4");
  const got: Buffer[] = [];
  socket.on("message", (msg, from) => {
    got.push(msg);
    if (reply) socket.send(reply(msg), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { socket, port: socket.address().port, got };
}

/** A query-shaped message with `id` (forwardQuery only matches the id). */
function message(id: number, text: string): Buffer {
  const b = Buffer.alloc(12 + text.length);
  b.writeUInt16BE(id, 0);
  b.write(text, 12, "latin1");
  return b;
}

describe("upstream resolvers: forwardQuery", function () {
  this.timeout(20_000);
  const servers: Socket[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it("returns the first server's answer", async () => {
    const a = await udpServer((m) => message(m.readUInt16BE(0), "from a"));
    const b = await udpServer((m) => message(m.readUInt16BE(0), "from b"));
    servers.push(a.socket, b.socket);
    const ask = [
      { address: "127.0.0.1", port: a.port },
      { address: "127.0.0.1", port: b.port },
    ];
    const answer = await forwardQuery(ask, message(0x1234, "query"), 0x1234);
    assert.equal(answer.subarray(12).toString(), "from a");
    assert.equal(a.got.length, 1);
    assert.equal(b.got.length, 0);
  });

  it("falls back to the next server when one stays silent, and ignores answers with another id", async () => {
    const silent = await udpServer();
    const wrongId = await udpServer((m) => message(m.readUInt16BE(0) ^ 1, "wrong id"));
    const good = await udpServer((m) => message(m.readUInt16BE(0), "good"));
    servers.push(silent.socket, wrongId.socket, good.socket);
    const started = Date.now();
    const answer = await forwardQuery(
      [
        { address: "127.0.0.1", port: silent.port },
        { address: "127.0.0.1", port: wrongId.port },
        { address: "127.0.0.1", port: good.port },
      ],
      message(0x0bad, "query"),
      0x0bad,
    );
    assert.equal(answer.subarray(12).toString(), "good");
    assert.equal(answer.readUInt16BE(0), 0x0bad);
    assert.deepEqual(
      [silent.got.length, wrongId.got.length, good.got.length],
      [1, 1, 1],
      "each server asked once, in turn",
    );
    // Two servers gave nothing usable: each was waited for (2.5 s) before the next.
    assert.ok(Date.now() - started >= 4500, `${Date.now() - started} ms`);
  });

  it("rejects when no server answers", async () => {
    const silent = await udpServer();
    servers.push(silent.socket);
    await assert.rejects(
      forwardQuery([{ address: "127.0.0.1", port: silent.port }], message(7, "q"), 7),
      /no resolver answered/,
    );
  });
});
