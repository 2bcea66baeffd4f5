/**
 * web-gate.ts, in two places. Refusals run in this process with the gate on 127.0.0.1: whatever it
 * refuses it never dials. Letting through needs a server at an address the policy can open (loopback
 * never is), so that part runs the gate, its client and its servers in a network namespace this test
 * makes (unshare --net), whose lo carries two TEST-NET-3 addresses: nothing leaves the namespace.
 *
 * Not covered: the 10 s sniff timeout for a client that sends nothing (a constant; a test would
 * wait 10 s), and the web gate with real repls (services/core/test/egress-*.e2e.test.ts).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";
import { DENY_ALL, type EgressPolicy, EgressRanges } from "../../../../../../lib/egress/policy.js";
import { SNIFF_LIMIT } from "../../../../../../lib/egress/sniff.js";
import { createLogger } from "../../../../../../lib/kit/log.js";
import { requireProgram, runs } from "../../../../../../lib/testing/programs.js";
import { WebGate } from "./web-gate.js";

const log = createLogger("web-gate-test", { level: "silent" });
const allowlist = (domains: string[]): EgressPolicy => ({ mode: "allowlist", domains, cidrs: [] });

/** Sends `bytes` to 127.0.0.1:`port` and collects everything until the gate closes the connection. */
function exchange(port: number, bytes: Buffer | string): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: "127.0.0.1", port });
    let text = "";
    let error: string | undefined;
    s.on("data", (c: Buffer) => (text += c.toString("latin1")));
    s.on("error", (e: NodeJS.ErrnoException) => (error = e.code));
    s.on("close", () => resolve({ text, error }));
    s.setTimeout(8000, () => s.destroy(new Error("the gate neither answered nor closed")));
    s.write(bytes);
  });
}

const get = (host?: string) => `GET / HTTP/1.1\r\n${host === undefined ? "" : `Host: ${host}\r\n`}\r\n`;

describe("web gate: refusals", function () {
  this.timeout(30_000);
  let gate: WebGate;
  let policy: EgressPolicy;
  const lookedUp: string[] = [];
  const table: Record<string, string[]> = {
    "a.example.test": ["127.0.0.1"],
    "meta.example.test": ["169.254.169.254", "10.0.0.1", "fe80::1"],
  };

  before(async () => {
    gate = await WebGate.listen({
      ranges: new EgressRanges(),
      policy: () => policy,
      lookup: async (name) => {
        lookedUp.push(name);
        const found = table[name];
        if (!found) throw new Error("ENOTFOUND");
        return found;
      },
      log,
      sniffTimeoutMs: 500,
    });
  });
  beforeEach(() => {
    policy = allowlist(["*.example.test"]);
    lookedUp.length = 0;
  });
  after(() => gate.close());

  const forbidden = (r: { text: string }, why: string) => {
    assert.match(r.text, /^HTTP\/1\.1 403 Forbidden\r\n/, r.text);
    assert.match(r.text, /Connection: close\r\n/);
    const body = r.text.split("\r\n\r\n")[1];
    assert.equal(body, `Devex: ${why}.\n`);
    assert.match(r.text, new RegExp(`Content-Length: ${Buffer.byteLength(body!)}\\r\\n`));
  };

  it("closes a client that sends no request head within the sniff timeout", async () => {
    const socket = connect({ host: "127.0.0.1", port: gate.port("http") });
    socket.on("error", () => {});
    socket.write("GET / HTTP/1.1\r\n");
    const began = Date.now();
    await once(socket, "close");
    const waited = Date.now() - began;
    assert.ok(waited >= 400 && waited < 5000, `closed after ${waited} ms`);
    assert.deepEqual(lookedUp, []);
  });

  it("an unlisted name gets 403 with the reason, and is not even looked up", async () => {
    forbidden(
      await exchange(gate.port("http"), get("b.other.test")),
      "b.other.test is not in this repl's egress allowlist",
    );
    forbidden(
      await exchange(gate.port("http"), get("B.Other.Test:8080")),
      "b.other.test is not in this repl's egress allowlist",
    );
    assert.deepEqual(lookedUp, []);
  });

  it("a request without a name to check gets 403 saying why", async () => {
    forbidden(await exchange(gate.port("http"), get()), "no name to check (no Host header)");
    forbidden(
      await exchange(gate.port("http"), "SSH-2.0-OpenSSH_9.2\r\n\r\n"),
      "no name to check (not an HTTP/1 request)",
    );
    const endless = `GET / HTTP/1.1\r\nX-Pad: ${"a".repeat(SNIFF_LIMIT + 100)}`;
    forbidden(await exchange(gate.port("http"), endless), "no name to check (request head too long)");
    assert.deepEqual(lookedUp, []);
  });

  it("an allowed name resolving only to addresses the policy never opens gets 403", async () => {
    const why = (n: string) => `${n} does not resolve to an address this repl may reach`;
    forbidden(await exchange(gate.port("http"), get("a.example.test")), why("a.example.test"));
    forbidden(await exchange(gate.port("http"), get("meta.example.test")), why("meta.example.test"));
    forbidden(await exchange(gate.port("http"), get("unknown.example.test")), why("unknown.example.test"));
    assert.deepEqual(lookedUp, ["a.example.test", "meta.example.test", "unknown.example.test"]);
  });

  it("reads the policy per connection: deny_all refuses a name the allowlist had", async () => {
    policy = DENY_ALL;
    forbidden(
      await exchange(gate.port("http"), get("a.example.test")),
      "a.example.test is not in this repl's egress allowlist",
    );
    assert.deepEqual(lookedUp, []);
  });

  it("TLS: an unlisted server name, or none, is closed without a byte back", async () => {
    for (const servername of ["b.other.test", undefined]) {
      const closed = await new Promise<{ bytes: number; error?: string }>((resolve) => {
        let bytes = 0;
        let error: string | undefined;
        const s = tlsConnect({ host: "127.0.0.1", port: gate.port("tls"), servername, rejectUnauthorized: false });
        s.on("data", (c: Buffer) => (bytes += c.length));
        s.on("error", (e: NodeJS.ErrnoException) => (error = e.code));
        s.on("close", () => resolve({ bytes, error }));
      });
      assert.equal(closed.bytes, 0, String(servername));
      assert.ok(closed.error, `the handshake failed (${servername}): ${JSON.stringify(closed)}`);
    }
    const plain = await exchange(gate.port("tls"), get("a.example.test"));
    assert.equal(plain.text, "", "plain HTTP on the TLS port gets nothing back");
    assert.deepEqual(lookedUp, []);
  });
});

/**
 * Runs in the test's namespace: servers on 203.0.113.10 and .11 (HTTP on 80 answering with the Host
 * and the address it was reached at; a TCP server on 443 recording the ClientHello's name), the gate
 * with a fixed lookup table, and a client; commands as JSON lines on stdin.
 */
const agentSource = (dir: string) => `
import { createServer as httpServer } from "node:http";
import { connect, createServer } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { createInterface } from "node:readline";
import { execFileSync } from "node:child_process";
import { WebGate } from "${join(dir, "web-gate.ts")}";
import { EgressRanges } from "${join(dir, "../../../../../../lib/egress/policy.ts")}";
import { sniffTlsServerName } from "${join(dir, "../../../../../../lib/egress/sniff.ts")}";
import { createLogger } from "${join(dir, "../../../../../../lib/kit/log.ts")}";

execFileSync("ip", ["link", "set", "lo", "up"]);
for (const a of ["203.0.113.10", "203.0.113.11"]) execFileSync("ip", ["addr", "add", a + "/32", "dev", "lo"]);
const seen = [];
for (const a of ["203.0.113.10", "203.0.113.11"]) {
  await new Promise((r) => httpServer((req, res) => {
    let body = 0;
    req.on("data", (c) => (body += c.length));
    req.on("end", () => res.end("hello " + req.headers.host + " at " + req.socket.localAddress + " body " + body));
  }).listen(80, a, r));
  await new Promise((r) => createServer((s) => {
    let head = Buffer.alloc(0);
    s.on("data", (c) => {
      head = Buffer.concat([head, c]);
      const sniffed = sniffTlsServerName(head);
      if (sniffed === "more") return;
      seen.push({ at: a, sniffed });
      s.destroy();
    });
  }).listen(443, a, r));
}
const table = {
  "a.example.test": ["203.0.113.10"],
  "b.example.test": ["203.0.113.11"],
  "mixed.example.test": ["127.0.0.1", "10.0.0.1", "203.0.113.11", "203.0.113.10"],
};
let policy = { mode: "deny_all", domains: [], cidrs: [] };
const gate = await WebGate.listen({
  ranges: new EgressRanges(),
  policy: () => policy,
  lookup: async (name) => table[name] ?? [],
  log: createLogger("gate", { level: "silent" }),
});
const ops = {
  policy: (c, done) => { policy = c.policy; done({}); },
  seen: (c, done) => done({ seen: seen.splice(0) }),
  http: (c, done) => {
    const s = connect({ host: "127.0.0.1", port: gate.port("http") });
    let text = "";
    s.on("data", (d) => (text += d));
    s.on("error", () => {});
    s.on("close", () => done({ text }));
    s.write(c.request);
  },
  tls: (c, done) => {
    const s = tlsConnect({ host: "127.0.0.1", port: gate.port("tls"), servername: c.servername, rejectUnauthorized: false });
    s.on("error", () => {});
    s.on("close", () => done({}));
  },
};
createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line);
  ops[c.op](c, (body) => process.stdout.write(JSON.stringify({ id: c.id, ...body }) + "\\n"));
});
process.stdout.write(JSON.stringify({ id: -1 }) + "\\n");
`;

describe("web gate: letting through, in a namespace", function () {
  this.timeout(60_000);
  let agent: ChildProcess;
  let tmp: string;
  let next = 0;
  const waiting = new Map<number, (body: Record<string, unknown>) => void>();
  const send = (command: Record<string, unknown>) => {
    const id = next++;
    return new Promise<Record<string, unknown>>((resolve) => {
      waiting.set(id, resolve);
      agent.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  };
  const http = async (request: string) => (await send({ op: "http", request })).text as string;
  const seen = async () => (await send({ op: "seen" })).seen as { at: string; sniffed: unknown }[];

  before(async function () {
    requireProgram(this, "ip");
    requireProgram(this, "unshare", runs("--net", "true"));
    tmp = mkdtempSync(join(tmpdir(), "devex-web-gate-"));
    const agentFile = join(tmp, "agent.mts"); // .mts: an ES module (top-level await) outside the package
    writeFileSync(agentFile, agentSource(fileURLToPath(new URL(".", import.meta.url))));
    const root = fileURLToPath(new URL("../../../../../../", import.meta.url));
    agent = spawn("unshare", ["--net", process.execPath, "--import", "tsx", agentFile], {
      cwd: root,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const ready = new Promise<void>((resolve, reject) => {
      waiting.set(-1, () => resolve());
      agent.once("exit", (code) => reject(new Error(`the namespace's agent exited (${code})`)));
    });
    createInterface({ input: agent.stdout! }).on("line", (line) => {
      const body = JSON.parse(line) as { id: number };
      waiting.get(body.id)?.(body);
      waiting.delete(body.id);
    });
    await ready;
  });
  after(() => {
    agent?.kill("SIGKILL");
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("HTTP: an allowed name reaches its own address with the head replayed and the body streamed", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test", "mixed.example.test"]) });
    const reply = await http(
      "POST /x HTTP/1.1\r\nHost: a.example.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(reply.endsWith("hello a.example.test at 203.0.113.10 body 5"), reply);
  });

  it("HTTP: the gate dials the first address the policy allows, skipping loopback and private ones", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test", "mixed.example.test"]) });
    const reply = await http(`${get("mixed.example.test:80").slice(0, -2)}Connection: close\r\n\r\n`);
    assert.ok(reply.endsWith("hello mixed.example.test:80 at 203.0.113.11 body 0"), reply);
  });

  it("HTTP: a name served from the same namespace but not listed is refused", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test"]) });
    const reply = await http(get("b.example.test"));
    assert.match(reply, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(reply, /b\.example\.test is not in this repl's egress allowlist/);
  });

  it("TLS: an allowed server name reaches its address with the ClientHello replayed; an unlisted one does not", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test"]) });
    await seen();
    await send({ op: "tls", servername: "a.example.test" });
    await send({ op: "tls", servername: "b.example.test" });
    assert.deepEqual(await seen(), [{ at: "203.0.113.10", sniffed: { name: "a.example.test" } }]);
  });

  it("a policy change applies to the next connection", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test"]) });
    assert.match(await http(get("b.example.test")), /403 Forbidden/);
    await send({ op: "policy", policy: allowlist(["b.example.test"]) });
    const reply = await http(`GET / HTTP/1.1\r\nHost: b.example.test\r\nConnection: close\r\n\r\n`);
    assert.ok(reply.endsWith("hello b.example.test at 203.0.113.11 body 0"), reply);
    assert.match(await http(get("a.example.test")), /403 Forbidden/);
    await send({ op: "policy", policy: { mode: "allow_all", domains: [], cidrs: [] } });
    const open = await http(`GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n`);
    assert.ok(open.endsWith("hello a.example.test at 203.0.113.10 body 0"), open);
  });

  it("HTTP: every request on a kept-alive connection is judged, not only the first", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test"]) });
    const reply = await http(`${get("a.example.test")}${get("b.example.test")}`);
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[\s\S]*hello a\.example\.test at 203\.0\.113\.10 body 0/);
    assert.match(reply, /HTTP\/1\.1 403 Forbidden[\s\S]*b\.example\.test is not in this repl's egress allowlist/);
    assert.doesNotMatch(reply, /hello b\.example\.test/);
  });

  it("HTTP: an absolute URI is judged by its own host, whatever the Host header says", async () => {
    await send({ op: "policy", policy: allowlist(["a.example.test"]) });
    const fronted = await http("GET http://b.example.test/ HTTP/1.1\r\nHost: a.example.test\r\n\r\n");
    assert.match(fronted, /^HTTP\/1\.1 403 Forbidden[\s\S]*b\.example\.test is not in/);
    const direct = await http(
      "GET http://a.example.test/x HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n",
    );
    assert.ok(direct.endsWith("hello a.example.test at 203.0.113.10 body 0"), direct);
  });
});
