/**
 * lib/egress/dns-wire.ts: questions read from the queries node:dns really sends (captured by a UDP
 * server on 127.0.0.1), addresses read from hand-built answers (compression pointers, CNAME chains,
 * A and AAAA), the resolver's own empty replies, and random or looping input rejected cleanly.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { answerAddresses, emptyReply, RCODE_NXDOMAIN, readQuestion, TYPE_A, TYPE_AAAA } from "./dns-wire.js";

/** The bytes node:dns sends for a lookup (the test never answers; the lookup times out). */
async function captureQuery(lookup: (r: Resolver) => Promise<unknown>): Promise<Buffer> {
  const server = createSocket("udp4");
  await new Promise<void>((resolve) => server.bind(0, "127.0.0.1", resolve));
  try {
    const query = new Promise<Buffer>((resolve) => server.once("message", resolve));
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([`127.0.0.1:${server.address().port}`]);
    lookup(r).catch(() => {});
    return await query;
  } finally {
    server.close();
  }
}

function encodeName(name: string): Buffer {
  return Buffer.concat([
    ...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")])),
    Buffer.from([0]),
  ]);
}

function record(name: Buffer, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([name, fixed, data]);
}

const pointer = (offset: number) => Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);
const TYPE_CNAME = 5;

/** A response to `query` (its header and question kept) with the given answer records. */
function response(query: Buffer, answers: Buffer[]): Buffer {
  const q = readQuestion(query)!;
  const head = Buffer.from(query.subarray(0, q.end));
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(answers.length, 6);
  return Buffer.concat([head, ...answers]);
}

describe("dns wire: questions", () => {
  it("reads the name, type and id of the queries node:dns sends", async () => {
    const a = await captureQuery((r) => r.resolve4("A.Example.Test"));
    const qa = readQuestion(a);
    assert.ok(qa);
    assert.equal(qa.name, "a.example.test");
    assert.equal(qa.type, TYPE_A);
    assert.equal(qa.id, a.readUInt16BE(0));
    assert.equal(qa.end, 12 + encodeName("a.example.test").length + 4);
    const aaaa = await captureQuery((r) => r.resolve6("b.example.test"));
    assert.deepEqual(
      { name: readQuestion(aaaa)?.name, type: readQuestion(aaaa)?.type },
      { name: "b.example.test", type: TYPE_AAAA },
    );
  });

  it("rejects responses, several questions, truncation and garbage", async () => {
    const query = await captureQuery((r) => r.resolve4("a.example.test"));
    const asResponse = Buffer.from(query);
    asResponse[2]! |= 0x80;
    assert.equal(readQuestion(asResponse), undefined);
    const twoQuestions = Buffer.from(query);
    twoQuestions.writeUInt16BE(2, 4);
    assert.equal(readQuestion(twoQuestions), undefined);
    for (let cut = 0; cut < query.length; cut++)
      assert.equal(readQuestion(query.subarray(0, cut)), undefined, `${cut}`);
    assert.equal(readQuestion(Buffer.from("not a dns message at all")), undefined);
  });

  it("reads only standard queries of class IN, with at most an EDNS record besides the question", async () => {
    const query = await captureQuery((r) => r.resolve4("a.example.test"));
    const end = readQuestion(query)!.end;
    const withOpcode = (opcode: number) => {
      const m = Buffer.from(query);
      m[2] = (m[2]! & 0x87) | (opcode << 3);
      return m;
    };
    // IQUERY, STATUS, NOTIFY (RFC 1996), UPDATE (RFC 2136): none is a lookup.
    for (const opcode of [1, 2, 4, 5]) assert.equal(readQuestion(withOpcode(opcode)), undefined, `opcode ${opcode}`);
    // CHAOS (version.bind and the like), Hesiod, ANY.
    for (const klass of [3, 4, 255]) {
      const m = Buffer.from(query);
      m.writeUInt16BE(klass, end - 2);
      assert.equal(readQuestion(m), undefined, `class ${klass}`);
    }
    const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]); // root name, OPT, 1232 bytes, no options
    const withRecords = (counts: [number, number, number], records: Buffer[]) => {
      const m = Buffer.concat([query.subarray(0, end), ...records]);
      for (const [i, n] of counts.entries()) m.writeUInt16BE(n, 6 + 2 * i);
      return m;
    };
    const edns = withRecords([0, 0, 1], [opt]);
    assert.equal(readQuestion(edns)?.name, "a.example.test", "a query with an EDNS OPT record");
    const a = record(pointer(12), TYPE_A, 60, Buffer.from([203, 0, 113, 7]));
    assert.equal(readQuestion(withRecords([1, 0, 0], [a])), undefined, "an answer record");
    assert.equal(readQuestion(withRecords([0, 1, 0], [a])), undefined, "an authority record (UPDATE's updates)");
    assert.equal(readQuestion(withRecords([0, 0, 2], [opt, opt])), undefined, "two additional records");
  });

  it("reads a name of many short labels (70 one-letter labels) and refuses one over 255 bytes", () => {
    const header = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const question = (name: string) => Buffer.concat([header, encodeName(name), Buffer.from([0, 1, 0, 1])]);
    const many = Array.from({ length: 70 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(".");
    assert.equal(readQuestion(question(many))?.name, many);
    const long = Array.from({ length: 5 }, () => "x".repeat(60)).join(".");
    assert.equal(readQuestion(question(long)), undefined);
  });

  it("returns cleanly on a name that points at itself (a compression loop)", () => {
    const header = Buffer.alloc(12);
    header.writeUInt16BE(1, 4);
    const loop = Buffer.concat([header, pointer(12), Buffer.alloc(4)]);
    assert.equal(readQuestion(loop), undefined);
    const twoStep = Buffer.concat([header, Buffer.from([1, 0x61]), pointer(12), Buffer.alloc(4)]);
    assert.equal(readQuestion(twoStep), undefined);
  });

  it("never hangs or throws on random bytes", function () {
    this.timeout(30_000);
    let seed = 53;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.alloc(Math.floor(random() * 64));
      for (let j = 0; j < b.length; j++) b[j] = random() < 0.2 ? 0xc0 | Math.floor(random() * 64) : random() * 256;
      if (b.length > 5 && random() < 0.5) b.writeUInt16BE(1, 4);
      if (b.length > 2 && random() < 0.5) b[2] = 0;
      const q = readQuestion(b);
      if (q) assert.ok(q.end <= b.length);
      try {
        answerAddresses(b);
      } catch (e) {
        assert.ok(e instanceof Error);
      }
    }
  });
});

describe("dns wire: answers", () => {
  let query: Buffer;
  before(async () => {
    query = await captureQuery((r) => r.resolve4("www.example.test"));
  });

  it("reads A and AAAA records whose names are compression pointers", () => {
    const aaaa = Buffer.from("20010db8000000000000000000000053", "hex");
    const reply = response(query, [
      record(pointer(12), TYPE_A, 300, Buffer.from([203, 0, 113, 7])),
      record(pointer(12), TYPE_AAAA, 60, aaaa),
    ]);
    assert.deepEqual(answerAddresses(reply), [
      { address: "203.0.113.7", ttl: 300 },
      { address: "2001:db8:0:0:0:0:0:53", ttl: 60 },
    ]);
  });

  it("follows past a CNAME chain (names compressed into earlier records) to its addresses", () => {
    const q = readQuestion(query)!;
    // www.example.test CNAME edge.example.test; edge CNAME cdn.other.test; cdn A 203.0.113.9.
    const first = record(
      pointer(12),
      TYPE_CNAME,
      30,
      Buffer.concat([Buffer.from([4]), Buffer.from("edge"), pointer(16)]),
    );
    const edgeAt = q.end + 2 + 10; // the first record's data: the name "edge" + pointer
    const second = record(pointer(edgeAt), TYPE_CNAME, 30, encodeName("cdn.other.test"));
    const cdnAt = q.end + first.length + 2 + 10;
    const third = record(pointer(cdnAt), TYPE_A, 120, Buffer.from([203, 0, 113, 9]));
    const reply = response(query, [first, second, third]);
    assert.deepEqual(answerAddresses(reply), [{ address: "203.0.113.9", ttl: 120 }]);
  });

  it("skips records of other types and odd lengths, and throws on a truncated record", () => {
    const reply = response(query, [
      record(pointer(12), TYPE_A, 5, Buffer.from([1, 2, 3])),
      record(pointer(12), 16, 5, Buffer.from("\x05hello", "latin1")),
      record(pointer(12), TYPE_A, 5, Buffer.from([203, 0, 113, 1])),
    ]);
    assert.deepEqual(answerAddresses(reply), [{ address: "203.0.113.1", ttl: 5 }]);
    assert.throws(() => answerAddresses(reply.subarray(0, reply.length - 2)));
  });
});

describe("dns wire: the resolver's own replies", () => {
  it("keeps the id, opcode, RD and question; sets QR, RA and the rcode; carries no records", async () => {
    const query = await captureQuery((r) => r.resolve4("blocked.example.test"));
    const q = readQuestion(query)!;
    for (const rcode of [0, RCODE_NXDOMAIN]) {
      const reply = emptyReply(query, q, rcode);
      assert.equal(reply.readUInt16BE(0), q.id);
      assert.equal(reply[2]! & 0x80, 0x80, "QR");
      assert.equal(reply[2]! & 0x79, query[2]! & 0x79, "opcode and RD kept");
      assert.equal(reply[3]! & 0x80, 0x80, "RA");
      assert.equal(reply[3]! & 0x0f, rcode);
      assert.deepEqual(
        [4, 6, 8, 10].map((at) => reply.readUInt16BE(at)),
        [1, 0, 0, 0],
      );
      assert.deepEqual(reply.subarray(12), query.subarray(12, q.end));
      assert.deepEqual(answerAddresses(reply), []);
      assert.equal(readQuestion(reply), undefined, "a reply is not read as a query");
    }
  });

  it("is a reply node:dns accepts: NXDOMAIN is ENOTFOUND, an empty NOERROR is ENODATA", async () => {
    const server = createSocket("udp4");
    await new Promise<void>((resolve) => server.bind(0, "127.0.0.1", resolve));
    server.on("message", (msg, from) => {
      const q = readQuestion(msg)!;
      server.send(emptyReply(msg, q, q.name.startsWith("gone") ? RCODE_NXDOMAIN : 0), from.port, from.address);
    });
    try {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${server.address().port}`]);
      await assert.rejects(r.resolve4("gone.example.test"), { code: "ENOTFOUND" });
      await assert.rejects(r.resolve4("empty.example.test"), { code: "ENODATA" });
    } finally {
      server.close();
    }
  });
});
