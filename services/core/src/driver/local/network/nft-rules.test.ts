/**
 * nft-rules.ts: the scripts renderRules and renderResolved write are checked by the real nft, then
 * installed (runNft: nsenter + nft -f) in a network namespace this test makes (unshare --net) and
 * judged by real connections from inside it. The namespace has lo and a veth pair whose both ends
 * stay inside it: the default route points at a gateway nobody answers for, so a packet the rules
 * let out goes nowhere. A connection the rules refuse fails at once (reset), one they let out times
 * out. Nothing leaves the namespace in any case.
 */

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createInterface } from "node:readline";
import { type EgressPolicy, EgressRanges } from "../../../../../../lib/egress/policy.js";
import { requireProgram, runs } from "../../../../../../lib/testing/programs.js";
import { NS_PORTS, renderResolved, renderRules } from "./nft-rules.js";
import { type NamespaceTools, runNft } from "./ns-exec.js";

/** The namespace's address and its silent gateway (TEST-NET-1), and test destinations. */
const OWN = "192.0.2.2";
const GATEWAY = "192.0.2.1";
const PUBLIC = "203.0.113.5";
const LISTED_NET = "198.51.100.0/24";
const LISTED = "198.51.100.7";

/** Runs inside the namespace: answers JSON commands on stdin (connect, listen, UDP echo and send). */
const AGENT = `
const net = require("node:net"), dgram = require("node:dgram"), rl = require("node:readline");
const accepted = [];
const reply = (id, body) => process.stdout.write(JSON.stringify({ id, ...body }) + "\\n");
const ops = {
  listen: (c, done) => net.createServer((s) => { accepted.push({ port: c.port, from: s.remoteAddress }); s.destroy(); })
    .listen(c.port, "127.0.0.1", () => done({})),
  accepted: (c, done) => done({ accepted: accepted.splice(0) }),
  echo: (c, done) => { const u = dgram.createSocket("udp4");
    u.on("message", (m, from) => u.send(Buffer.concat([Buffer.from("echo:"), m]), from.port, from.address));
    u.bind(c.port, "127.0.0.1", () => done({})); },
  connect: (c, done) => { const started = Date.now(); const s = net.connect({ host: c.host, port: c.port });
    const end = (outcome, extra = {}) => { clearTimeout(t); s.destroy(); done({ outcome, ms: Date.now() - started, ...extra }); };
    const t = setTimeout(() => end("timeout"), c.timeoutMs);
    s.once("connect", () => end("connected", { local: s.localAddress }));
    s.once("error", (e) => end(e.code)); },
  udp: (c, done) => { const u = dgram.createSocket("udp4");
    const t = setTimeout(() => { u.close(); done({ outcome: "timeout" }); }, c.timeoutMs);
    u.on("message", (m, from) => { clearTimeout(t); u.close(); done({ outcome: m.toString(), from: from.address }); });
    u.on("error", (e) => { clearTimeout(t); u.close(); done({ outcome: e.code }); });
    // A refused send fails in its callback (dgram emits no 'error' for it).
    u.send(Buffer.from(c.text), c.port, c.host, (e) => { if (e) { clearTimeout(t); u.close(); done({ outcome: e.code }); } }); },
};
rl.createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line);
  ops[c.op](c, (body) => reply(c.id, body));
});
`;

interface Outcome {
  outcome: string;
  ms: number;
  local?: string;
  from?: string;
}

/** A network namespace with lo and a default route to nowhere, and the agent running in it. */
class TestNamespace {
  private next = 0;
  private readonly waiting = new Map<number, (body: Record<string, unknown>) => void>();

  constructor(readonly agent: ChildProcess) {
    createInterface({ input: agent.stdout! }).on("line", (line) => {
      const body = JSON.parse(line) as { id: number };
      this.waiting.get(body.id)?.(body);
      this.waiting.delete(body.id);
    });
  }

  static async start(ip: string): Promise<TestNamespace> {
    const agent = spawn("unshare", ["--net", process.execPath, "-e", AGENT], { stdio: ["pipe", "pipe", "inherit"] });
    const ns = new TestNamespace(agent);
    const inside = (...args: string[]) => execFileSync("nsenter", [`--target=${agent.pid}`, "--net", ip, ...args]);
    // The agent answers once node is up, after unshare made the namespace.
    await ns.send({ op: "accepted" });
    inside("link", "set", "lo", "up");
    inside("link", "add", "out0", "type", "veth", "peer", "name", "out1");
    for (const dev of ["out0", "out1"]) inside("link", "set", dev, "up");
    inside("addr", "add", `${OWN}/24`, "dev", "out0");
    inside("route", "add", "default", "via", GATEWAY, "dev", "out0");
    // A fixed neighbour entry, so a packet let out is sent (to a MAC nobody has) instead of failing ARP.
    inside("neigh", "add", GATEWAY, "lladdr", "02:00:00:00:00:01", "dev", "out0", "nud", "permanent");
    return ns;
  }

  send(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.agent.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  connect(host: string, port: number, timeoutMs = 700): Promise<Outcome> {
    return this.send({ op: "connect", host, port, timeoutMs }) as Promise<unknown> as Promise<Outcome>;
  }

  udp(host: string, port: number, text: string): Promise<Outcome> {
    return this.send({ op: "udp", host, port, text, timeoutMs: 1500 }) as Promise<unknown> as Promise<Outcome>;
  }
}

/** The operator's DEVEX_EGRESS_DENY_CIDRS, as egressRangesFor adds them to the never tier. */
const OPERATOR_DENIED = "198.18.0.0/15";
const ranges = new EgressRanges([OPERATOR_DENIED]);
const allowAll: EgressPolicy = { mode: "allow_all", domains: [], cidrs: [] };
const denyAll: EgressPolicy = { mode: "deny_all", domains: [], cidrs: [] };
const allowlist: EgressPolicy = { mode: "allowlist", domains: ["a.example.test"], cidrs: [LISTED_NET] };
const policies = [allowAll, denyAll, allowlist];

describe("nft rules: scripts nft accepts", function () {
  this.timeout(60_000);
  before(function () {
    requireProgram(this, "nft");
    requireProgram(this, "unshare", runs("--net", "true"));
  });

  const check = (script: string) =>
    execFileSync("unshare", ["--net", "nft", "--check", "-f", "-"], { input: script, stdio: "pipe" });

  it("renderRules for every mode, with and without learned addresses and IPv6 ranges", () => {
    const v6: EgressPolicy = { mode: "allowlist", domains: [], cidrs: ["2001:db8::/32", LISTED_NET] };
    const withDenied = new EgressRanges(["2001:db8:ffff::1/128", "198.18.0.0/15"]);
    for (const p of [...policies, v6])
      for (const learned of [[], ["203.0.113.9", "2001:db8::9"].map((address) => ({ address, seconds: 30 }))])
        check(renderRules(p, withDenied, learned));
  });

  it("renderResolved, for v4 and v6 addresses, on top of installed rules", () => {
    const script = renderRules(allowlist, ranges) + renderResolved(["203.0.113.9", "2001:db8::9"], 30);
    check(script);
    assert.equal(renderResolved([], 30).trim(), "", "nothing learned: an empty script");
  });

  it("a script nft refuses is refused (the check is real)", () => {
    assert.throws(() => check(renderRules(allowAll, ranges).replace("policy drop", "policy dorp")));
  });
});

describe("nft rules: behaviour in a namespace", function () {
  this.timeout(120_000);
  let ns: TestNamespace;
  let tools: NamespaceTools;
  const install = (script: string) => {
    const netns = openSync(`/proc/${ns.agent.pid}/ns/net`, "r");
    return runNft(tools, netns, script).finally(() => closeSync(netns));
  };

  before(async function () {
    const nft = requireProgram(this, "nft");
    const nsenter = requireProgram(this, "nsenter");
    const ip = requireProgram(this, "ip");
    requireProgram(this, "unshare", runs("--net", "true"));
    tools = { nsenter, nft };
    ns = await TestNamespace.start(ip);
    await ns.send({ op: "listen", port: 7000 });
    for (const port of [NS_PORTS.http, NS_PORTS.tls]) await ns.send({ op: "listen", port });
    await ns.send({ op: "echo", port: NS_PORTS.dns });
  });
  after(() => ns?.agent.kill("SIGKILL"));

  const refused = (o: Outcome, what: string) => {
    assert.equal(o.outcome, "ECONNREFUSED", `${what}: ${JSON.stringify(o)}`);
    assert.ok(o.ms < 500, `${what} refused at once, not after ${o.ms} ms`);
  };
  /** Let out by the rules: nothing answers for the gateway, so the SYN goes nowhere. */
  const letOut = (o: Outcome, what: string) => assert.equal(o.outcome, "timeout", `${what}: ${JSON.stringify(o)}`);

  it("without rules a connection out times out rather than being refused (the test's baseline)", async () => {
    letOut(await ns.connect("169.254.169.254", 8080), "no rules yet");
  });

  for (const p of policies) {
    it(`${p.mode}: loopback in the namespace stays reachable; the never tier and private ranges are refused`, async () => {
      await install(renderRules(p, ranges));
      const local = await ns.connect("127.0.0.1", 7000);
      assert.equal(local.outcome, "connected");
      for (const host of [
        "169.254.169.254",
        "240.0.0.1",
        "198.18.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
      ])
        refused(await ns.connect(host, 8080), `${p.mode} ${host}`);
      if (p.mode !== "allowlist") refused(await ns.connect("169.254.169.254", 80), `${p.mode} metadata:80`);
    });

    it(`${p.mode}: UDP to port 53 of any address reaches the namespace's 127.0.0.1:53`, async () => {
      await install(renderRules(p, ranges));
      for (const host of ["203.0.113.53", "10.255.255.53"]) {
        const o = await ns.udp(host, 53, `query to ${host}`);
        assert.equal(o.outcome, `echo:query to ${host}`, `${p.mode} ${host}: ${JSON.stringify(o)}`);
        assert.equal(o.from, host, "the reply comes back from the address asked");
      }
    });
  }

  it("deny_all refuses a public address; allow_all lets it out", async () => {
    await ns.send({ op: "accepted" });
    await install(renderRules(denyAll, ranges));
    refused(await ns.connect(PUBLIC, 8080), "deny_all");
    refused(await ns.connect(PUBLIC, 443), "deny_all :443");
    await install(renderRules(allowAll, ranges));
    letOut(await ns.connect(PUBLIC, 8080), "allow_all");
    letOut(await ns.connect(PUBLIC, 80), "allow_all :80 goes out directly, not to the gate");
    assert.deepEqual((await ns.send({ op: "accepted" })).accepted, []);
  });

  it("allow_all opens a private range only when its CIDRs name it; the operator's never", async () => {
    const cidrs = ["10.1.0.0/16", OPERATOR_DENIED];
    await install(renderRules({ mode: "allow_all", domains: [], cidrs }, ranges));
    letOut(await ns.connect("10.1.2.3", 8080), "listed private");
    refused(await ns.connect("10.2.0.1", 8080), "unlisted private");
    refused(await ns.connect("198.18.0.1", 8080), "listed but always denied by the operator");
  });

  it("an allowlist refuses a public address until renderResolved opens it; its CIDRs are open", async () => {
    await install(renderRules(allowlist, ranges));
    refused(await ns.connect(PUBLIC, 8080), "not yet resolved");
    letOut(await ns.connect(LISTED, 8080), "listed CIDR");
    await install(renderResolved([PUBLIC], 30));
    letOut(await ns.connect(PUBLIC, 8080), "resolved");
    refused(await ns.connect("203.0.113.6", 8080), "its neighbour stays closed");
  });

  it("an allowlist's learned addresses expire with their timeout", async () => {
    await install(renderRules(allowlist, ranges));
    await install(renderResolved(["203.0.113.77"], 1));
    letOut(await ns.connect("203.0.113.77", 8080), "just resolved");
    await new Promise((r) => setTimeout(r, 1600));
    refused(await ns.connect("203.0.113.77", 8080), "after its timeout");
  });

  it("an allowlist sends TCP 80 and 443 to the gate's ports with a loopback source, except to its CIDRs", async () => {
    await install(renderRules(allowlist, ranges));
    await ns.send({ op: "accepted" });
    for (const host of [PUBLIC, "10.9.9.9", "169.254.169.254"])
      for (const port of [80, 443])
        assert.equal((await ns.connect(host, port)).outcome, "connected", `${host}:${port}`);
    const { accepted } = (await ns.send({ op: "accepted" })) as { accepted: { port: number; from: string }[] };
    assert.deepEqual(
      accepted.map((a) => `${a.port} from ${a.from}`),
      [NS_PORTS.http, NS_PORTS.tls, NS_PORTS.http, NS_PORTS.tls, NS_PORTS.http, NS_PORTS.tls].map(
        (p) => `${p} from 127.0.0.1`,
      ),
    );
    letOut(await ns.connect(LISTED, 443), "a listed CIDR's 443 goes out directly");
    assert.deepEqual((await ns.send({ op: "accepted" })).accepted, []);
  });

  it("allowlist: QUIC (UDP 443) to a learned address is refused, other UDP and TCP to it are let out", async () => {
    await install(renderRules(allowlist, ranges, [{ address: PUBLIC, seconds: 60 }]));
    assert.equal((await ns.udp(PUBLIC, 443, "quic")).outcome, "EPERM");
    assert.equal((await ns.udp(PUBLIC, 4443, "other udp")).outcome, "timeout");
    letOut(await ns.connect(PUBLIC, 8443), "TCP to a learned address");
  });

  it("an address kept across a policy change closes when what was left of its TTL runs out", async () => {
    await install(renderRules(allowlist, ranges, [{ address: PUBLIC, seconds: 1 }]));
    letOut(await ns.connect(PUBLIC, 8080), "kept for one more second");
    await new Promise((r) => setTimeout(r, 1600));
    refused(await ns.connect(PUBLIC, 8080), "after its TTL");
  });

  it("a new policy applies to the next connection (one nft transaction replaces the old rules)", async () => {
    await install(renderRules(allowAll, ranges));
    letOut(await ns.connect(PUBLIC, 8080), "allow_all");
    await install(renderRules(denyAll, ranges));
    refused(await ns.connect(PUBLIC, 8080), "then deny_all");
    await install(renderRules(allowlist, ranges, [{ address: PUBLIC, seconds: 60 }]));
    letOut(await ns.connect(PUBLIC, 8080), "then an allowlist that kept the address");
    await install(renderRules(allowlist, ranges));
    refused(await ns.connect(PUBLIC, 8080), "then an allowlist without it");
    const tables = execFileSync("nsenter", [`--target=${ns.agent.pid}`, "--net", tools.nft, "list", "tables"], {
      encoding: "utf8",
    });
    assert.deepEqual(tables.trim().split("\n").sort(), ["table inet devex_filter", "table ip devex_nat"]);
  });

  it("runNft rejects with nft's message and leaves the installed rules in place", async () => {
    await install(renderRules(denyAll, ranges));
    await assert.rejects(
      install("add element inet devex_filter nosuchset { 203.0.113.5 }\n"),
      /nft failed.*nosuchset/s,
    );
    refused(await ns.connect(PUBLIC, 8080), "deny_all still installed");
  });
});
