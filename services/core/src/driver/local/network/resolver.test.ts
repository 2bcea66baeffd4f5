/**
 * resolver.ts: a repl's resolver between a client and an upstream DNS responder, both UDP sockets on
 * 127.0.0.1 written here. Names outside the policy get NXDOMAIN without reaching the upstream,
 * answers pointing at denied addresses come back empty, an allowlist opens what it learned (TTL
 * clamped) before the answer goes out, a flood keeps at most 64 queries in flight, and a repl's
 * queries reach the upstream at no more than its rate (a burst of 400, then 200 a second).
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { connect } from "node:net";
import { answerAddresses, RCODE_NXDOMAIN, TYPE_A } from "../../../../../../lib/egress/dns-wire.js";
import { ALLOW_ALL, DENY_ALL, type EgressPolicy, EgressRanges } from "../../../../../../lib/egress/policy.js";
import { createLogger } from "../../../../../../lib/kit/log.js";
import { ReplResolver } from "./resolver.js";

interface Answer {
  address: number[];
  ttl: number;
}

function query(id: number, name: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4);
  const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(TYPE_A, 1);
  tail.writeUInt16BE(1, 3);
  return Buffer.concat([header, ...labels, tail]);
}

/** The upstream's answer: the query's header and question, and A records named by a pointer to it. */
function reply(q: Buffer, answers: Answer[]): Buffer {
  const head = Buffer.from(q);
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(answers.length, 6);
  const records = answers.map((a) => {
    const r = Buffer.alloc(16);
    r.writeUInt16BE(0xc00c, 0);
    r.writeUInt16BE(TYPE_A, 2);
    r.writeUInt16BE(1, 4);
    r.writeUInt32BE(a.ttl, 6);
    r.writeUInt16BE(4, 10);
    Buffer.from(a.address).copy(r, 12);
    return r;
  });
  return Buffer.concat([head, ...records]);
}

function questionName(q: Buffer): string {
  const labels: string[] = [];
  for (let at = 12; q[at]; at += 1 + q[at]!) labels.push(q.toString("latin1", at + 1, at + 1 + q[at]!));
  return labels.join(".");
}

/** The upstream: answers names from `table` after `delayMs`, counting queries it holds at once. */
class Upstream {
  readonly socket = createSocket("udp4");
  received = 0;
  lastReceivedAt = 0;
  holding = 0;
  mostHeld = 0;
  delayMs = 0;
  constructor(private readonly table: Record<string, Answer[]>) {
    this.socket.on("message", (msg, from) => {
      this.received++;
      this.lastReceivedAt = performance.now();
      this.holding++;
      this.mostHeld = Math.max(this.mostHeld, this.holding);
      setTimeout(() => {
        this.holding--;
        this.socket.send(reply(msg, this.table[questionName(msg)] ?? []), from.port, from.address);
      }, this.delayMs);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    return this.socket.address().port;
  }
}

const ranges = new EgressRanges();
const log = createLogger("resolver-test", { level: "silent" });
const public7 = [203, 0, 113, 7];

describe("repl resolver", function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let resolver: ReplResolver;
  let client: Socket;
  let policy: EgressPolicy;
  let learned: { name: string; addresses: string[]; ttl: number; at: number }[];
  let learnDelayMs: number;
  let upstreamPort: number;

  /** A repl's resolver in front of `upstream`, under `policy`, recording what it opens in `learned`. */
  const newResolver = () =>
    ReplResolver.listen({
      upstream: [{ address: "127.0.0.1", port: upstreamPort }],
      ranges,
      policy: () => policy,
      learned: async (name, addresses, ttl) => {
        await new Promise((r) => setTimeout(r, learnDelayMs));
        learned.push({ name, addresses, ttl, at: Date.now() });
      },
      log,
    });

  before(async () => {
    upstream = new Upstream({
      "a.example.test": [{ address: public7, ttl: 300 }],
      "short.example.test": [{ address: [203, 0, 113, 8], ttl: 1 }],
      "long.example.test": [{ address: [203, 0, 113, 9], ttl: 86_400 }],
      "race.example.test": [{ address: public7, ttl: 300 }],
      "kept.example.test": [{ address: public7, ttl: 300 }],
      "loop.example.test": [{ address: [127, 0, 0, 1], ttl: 60 }],
      "metadata.example.test": [{ address: [169, 254, 169, 254], ttl: 60 }],
      "private.example.test": [
        { address: public7, ttl: 60 },
        { address: [10, 0, 0, 1], ttl: 60 },
      ],
    });
    upstreamPort = await upstream.listen();
    resolver = await newResolver();
    client = createSocket("udp4");
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
  });
  beforeEach(() => {
    policy = ALLOW_ALL;
    learned = [];
    learnDelayMs = 0;
    upstream.delayMs = 0;
  });
  after(() => {
    resolver.close();
    upstream.socket.close();
    client.close();
  });

  /** Sends a query for `name` and waits for the reply carrying its id. */
  async function ask(
    name: string,
    id = Math.floor(Math.random() * 65536),
    port = resolver.port,
  ): Promise<{ msg: Buffer; at: number }> {
    const got = new Promise<{ msg: Buffer; at: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply for ${name}`)), 8000);
      const onMessage = (msg: Buffer) => {
        if (msg.readUInt16BE(0) !== id) return;
        clearTimeout(timer);
        client.off("message", onMessage);
        resolve({ msg, at: Date.now() });
      };
      client.on("message", onMessage);
    });
    client.send(query(id, name), port, "127.0.0.1");
    return got;
  }
  const rcode = (msg: Buffer) => msg[3]! & 0x0f;

  it("forwards an allowed name and returns the upstream's answer", async () => {
    const { msg } = await ask("a.example.test");
    assert.equal(rcode(msg), 0);
    assert.deepEqual(answerAddresses(msg), [{ address: "203.0.113.7", ttl: 300 }]);
    assert.deepEqual(learned, [], "allow_all opens nothing by name");
  });

  it("answers NXDOMAIN for names the policy does not allow, without asking the upstream", async () => {
    for (const p of [DENY_ALL, { mode: "allowlist", domains: ["*.other.test"], cidrs: [] } as EgressPolicy]) {
      policy = p;
      const before = upstream.received;
      const { msg } = await ask("a.example.test");
      assert.equal(rcode(msg), RCODE_NXDOMAIN, p.mode);
      assert.deepEqual(answerAddresses(msg), []);
      assert.equal(upstream.received, before, `${p.mode}: the upstream was not asked`);
    }
  });

  it("answers with no addresses when the upstream points at loopback, link-local or a private address", async () => {
    for (const name of ["loop.example.test", "metadata.example.test", "private.example.test"]) {
      const { msg } = await ask(name);
      assert.equal(rcode(msg), 0, name);
      assert.deepEqual(answerAddresses(msg), [], name);
    }
    policy = { mode: "allowlist", domains: ["*.example.test"], cidrs: [] };
    const { msg } = await ask("metadata.example.test");
    assert.deepEqual(answerAddresses(msg), []);
    assert.deepEqual(learned, [], "a denied answer opens nothing");
  });

  it("a private address the policy's CIDRs open passes", async () => {
    policy = { mode: "allow_all", domains: [], cidrs: ["10.0.0.0/8"] };
    const { msg } = await ask("private.example.test");
    assert.deepEqual(
      answerAddresses(msg).map((a) => a.address),
      ["203.0.113.7", "10.0.0.1"],
    );
  });

  it("under an allowlist opens the answer's addresses before replying, with the TTL clamped to [30, 3600]", async () => {
    policy = { mode: "allowlist", domains: ["*.example.test"], cidrs: [] };
    learnDelayMs = 300;
    const sent = Date.now();
    const { msg, at } = await ask("a.example.test");
    assert.deepEqual(answerAddresses(msg), [{ address: "203.0.113.7", ttl: 300 }]);
    assert.equal(learned.length, 1);
    assert.deepEqual(
      { name: learned[0]!.name, addresses: learned[0]!.addresses, ttl: learned[0]!.ttl },
      { name: "a.example.test", addresses: ["203.0.113.7"], ttl: 300 },
    );
    assert.ok(learned[0]!.at <= at, "learned finished before the reply arrived");
    assert.ok(at - sent >= 300, "the reply waited for learned");
    learnDelayMs = 0;
    await ask("short.example.test");
    await ask("long.example.test");
    assert.deepEqual(
      learned.slice(1).map((l) => [l.name, l.ttl]),
      [
        ["short.example.test", 30],
        ["long.example.test", 3600],
      ],
    );
  });

  it("answers over TCP too: several length-prefixed queries on one connection, each answered", async () => {
    policy = { mode: "allowlist", domains: ["a.example.test"], cidrs: [] };
    const framed = (id: number, name: string) => {
      const q = query(id, name);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(q.length);
      return Buffer.concat([length, q]);
    };
    const socket = connect({ host: "127.0.0.1", port: resolver.tcpPort });
    await once(socket, "connect");
    // Both queries in one write: the resolver must find the second behind the first.
    socket.write(Buffer.concat([framed(7, "a.example.test"), framed(8, "other.example.test")]));
    const replies = new Map<number, Buffer>();
    let buffered = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`answers so far: ${[...replies.keys()]}`)), 5000);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + msg.length);
          replies.set(msg.readUInt16BE(0), Buffer.from(msg));
        }
        if (replies.size === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    socket.destroy();
    assert.deepEqual(answerAddresses(replies.get(7)!), [{ address: "203.0.113.7", ttl: 300 }]);
    assert.equal(rcode(replies.get(8)!), RCODE_NXDOMAIN);
    assert.equal(learned[0]?.name, "a.example.test");
  });

  it("judges the name again when the upstream answers: a policy change meanwhile wins", async () => {
    policy = { mode: "allowlist", domains: ["race.example.test"], cidrs: [] };
    upstream.delayMs = 300;
    const pending = ask("race.example.test");
    await new Promise((r) => setTimeout(r, 100));
    policy = { mode: "allowlist", domains: ["other.example.test"], cidrs: [] };
    const { msg } = await pending;
    assert.equal(rcode(msg), 3, "NXDOMAIN under the new policy");
    assert.deepEqual(answerAddresses(msg), []);
    assert.deepEqual(learned, [], "nothing opened for a name the new policy drops");
  });

  it("keeps an answer for its TTL: the second lookup is answered without the upstream, with its own id, and judged again", async () => {
    const before = upstream.received;
    const first = await ask("kept.example.test", 1111);
    const second = await ask("kept.example.test", 2222);
    assert.equal(upstream.received - before, 1, "one upstream query for two lookups");
    assert.equal(second.msg.readUInt16BE(0), 2222);
    assert.deepEqual(answerAddresses(second.msg), answerAddresses(first.msg));
    policy = DENY_ALL;
    assert.equal(
      rcode((await ask("kept.example.test", 3333)).msg),
      RCODE_NXDOMAIN,
      "a kept answer is not served past the policy",
    );
  });

  it("drops queries above 64 in flight and keeps answering after a flood of 1,000", async () => {
    upstream.delayMs = 300;
    upstream.mostHeld = 0;
    const before = upstream.received;
    // Names of their own: answers the resolver keeps (answer-cache.ts) would not reach the upstream.
    for (let i = 0; i < 1000; i++) client.send(query(i, `flood${i}.example.test`), resolver.port, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(upstream.mostHeld <= 64, `the upstream held ${upstream.mostHeld} queries at once`);
    assert.ok(upstream.mostHeld >= 32, `the flood reached the upstream (${upstream.mostHeld} at once)`);
    assert.ok(upstream.received - before < 1000, "some of the flood was dropped");
    upstream.delayMs = 0;
    const { msg } = await ask("a.example.test", 4242);
    assert.deepEqual(answerAddresses(msg), [{ address: "203.0.113.7", ttl: 300 }]);
  });

  it("lets a repl's queries reach the upstream at 200 a second after a burst of 400, dropping the rest of a flood", async () => {
    const flooded = await newResolver();
    try {
      const before = upstream.received;
      const start = performance.now();
      // 2,000 queries in one second: 100 every 50 ms, each batch well under the 64-in-flight cap's reach.
      for (let batch = 0; batch < 20; batch++) {
        for (let i = 0; i < 100; i++)
          client.send(query(batch * 100 + i, `rate${batch * 100 + i}.example.test`), flooded.port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 500));
      const passed = upstream.received - before;
      const seconds = (upstream.lastReceivedAt - start) / 1000;
      const allowed = 400 + 200 * seconds;
      assert.ok(
        passed <= allowed + 2,
        `${passed} queries reached the upstream in ${seconds.toFixed(2)} s (at most ${allowed.toFixed(0)})`,
      );
      assert.ok(passed >= 200, `the flood reached the upstream (${passed} queries)`);
      // Another repl's resolver is not held back by this one's flood.
      assert.deepEqual(answerAddresses((await ask("a.example.test", 7)).msg), [{ address: "203.0.113.7", ttl: 300 }]);
      // The flooded repl answers again once its bucket refills (a client retries a dropped query).
      await new Promise((r) => setTimeout(r, 100));
      const { msg } = await ask("a.example.test", 4343, flooded.port);
      assert.deepEqual(answerAddresses(msg), [{ address: "203.0.113.7", ttl: 300 }]);
    } finally {
      flooded.close();
    }
  });
});
