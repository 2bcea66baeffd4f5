/**
 * The egress proxy for real: in-process on loopback, policies in a real redis-server written as
 * core writes them (replMeta:{replId}'s `egress` field), real HTTP clients. The "internet" is two
 * servers on loopback: the test's resolver maps names to public test addresses (TEST-NET-3), the
 * proxy judges those by the policy, and its test-only dial maps them to the loopback servers. Any
 * other dial fails the test, so nothing leaves loopback even when the proxy is wrong.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { pino } from "pino";
import { egressProxyToken } from "../../../lib/contracts/egress-proxy.js";
import { type EgressPolicy, EgressRanges } from "../../../lib/egress/policy.js";
import { freePort } from "../../../lib/testing/ports.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { policyRedis, redisPolicySource } from "../src/policies.js";
import { createEgressProxy } from "../src/proxy.js";

const SECRET = "egress-test-secret-0123456789abcdef";
/** name → the address the resolver answers. */
const names: Record<string, string> = {
  "allowed.test": "203.0.113.10",
  "api.allowed.test": "203.0.113.10",
  "other.test": "203.0.113.11",
  "metadata.test": "169.254.169.254",
  "private.test": "10.0.0.5",
  "loopback.test": "127.0.0.1",
};

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

describe("egress proxy (services/egress)", () => {
  let redis: TestRedis;
  let client: Redis;
  let proxy: Server;
  let proxyPort: number;
  let web: Server;
  let echo: ReturnType<typeof createTcpServer>;
  const dialled: string[] = [];
  /** Which loopback server a public test address stands for (the CONNECT tests use the echo server). */
  let servers: Record<string, () => number>;

  before(async function () {
    redis = await startRedis(requireProgram(this, "redis-server"));
    client = new Redis(redis.url);
    web = createServer((req, res) => {
      if (req.url === "/slow") {
        // The first chunk, then nothing until the client says it saw it: proves streaming.
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("first;");
        web.once("go", () => res.end("rest"));
        return;
      }
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        res.setHeader("x-seen-proxy-auth", String(req.headers["proxy-authorization"] ?? "none"));
        res.setHeader("x-seen-hop", String(req.headers["x-hop"] ?? "none"));
        res.end(`${req.method} ${req.headers.host} ${req.url} ${body}`);
      });
    });
    await new Promise<void>((r) => web.listen(0, "127.0.0.1", r));
    echo = createTcpServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const portOf = (s: { address(): AddressInfo | string | null }) => (s.address() as AddressInfo).port;
    servers = { "203.0.113.10": () => portOf(web), "203.0.113.11": () => portOf(web) };
    proxy = createEgressProxy({
      secret: SECRET,
      policies: redisPolicySource(client, { fallback: { mode: "allow_all", domains: [], cidrs: [] } }),
      ranges: new EgressRanges(["198.51.100.0/24"]),
      log: pino({ level: "silent" }),
      resolve: async (name) => {
        const a = names[name];
        if (!a) throw new Error("NXDOMAIN");
        return [a];
      },
      testOnlyDial: (address, port) => {
        dialled.push(`${address}:${port}`);
        const local = port === 7 ? portOf(echo) : servers[address]?.();
        if (!local) throw new Error(`the proxy dialled ${address}:${port}, which the test does not serve`);
        return connect({ host: "127.0.0.1", port: local });
      },
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    proxyPort = portOf(proxy);
  });

  after(async () => {
    proxy?.close();
    web?.close();
    echo?.close();
    client?.disconnect();
    await redis?.dispose();
  });

  beforeEach(() => {
    dialled.length = 0;
  });

  let n = 0;
  /** A repl record as core's Redis store writes it, with its credential. */
  async function repl(egress?: EgressPolicy) {
    const replId = `r${(++n).toString().padStart(12, "0")}`;
    await client.hset(`replMeta:${replId}`, { replId, name: "t", owner: "alice", status: "RUNNING" });
    if (egress) await client.hset(`replMeta:${replId}`, "egress", JSON.stringify(egress));
    const auth = `Basic ${Buffer.from(`${replId}:${egressProxyToken(SECRET, replId)}`).toString("base64")}`;
    return { replId, auth };
  }

  /** A plain-HTTP request through the proxy (absolute URI). */
  async function get(url: string, auth?: string, method = "GET", body = "", extra = {}): Promise<Reply> {
    const req = request({
      host: "127.0.0.1",
      port: proxyPort,
      method,
      path: url,
      headers: { host: new URL(url).host, ...(auth && { "proxy-authorization": auth }), ...extra },
    });
    req.end(body);
    const [res] = await once(req, "response");
    let text = "";
    for await (const chunk of res) text += chunk;
    return { status: res.statusCode, body: text, headers: res.headers };
  }

  /** A CONNECT through the proxy: the status, and the tunnel when it was established. */
  async function tunnel(target: string, auth?: string): Promise<{ status: number; body: string; socket?: Socket }> {
    const req = request({
      host: "127.0.0.1",
      port: proxyPort,
      method: "CONNECT",
      path: target,
      headers: auth ? { "proxy-authorization": auth } : {},
    });
    req.end();
    // Node reports every answer to a CONNECT as "connect"; a refusal's body follows on the socket.
    const [res, socket, head] = (await once(req, "connect")) as [{ statusCode: number }, Socket, Buffer];
    if (res.statusCode === 200) return { status: 200, body: "", socket };
    let body = head.toString();
    for await (const chunk of socket) body += chunk;
    return { status: res.statusCode, body };
  }

  async function echoThrough(socket: Socket, text: string): Promise<string> {
    socket.write(text);
    let seen = "";
    for await (const chunk of socket) {
      seen += chunk;
      if (seen.length >= text.length) break;
    }
    socket.destroy();
    return seen;
  }

  it("allow_all: plain HTTP by name is forwarded with its Host, without the credential; CONNECT tunnels bytes", async () => {
    const { auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    const r = await get("http://allowed.test/x?y=1", auth, "POST", "hello", { connection: "x-hop", "x-hop": "1" });
    assert.equal(r.status, 200);
    assert.equal(r.body, "POST allowed.test /x?y=1 hello");
    assert.equal(r.headers["x-seen-proxy-auth"], "none");
    assert.equal(r.headers["x-seen-hop"], "none", "a header the Connection header names is not forwarded");
    const t = await tunnel("other.test:7", auth);
    assert.equal(t.status, 200);
    assert.equal(await echoThrough(t.socket!, "raw tcp bytes"), "raw tcp bytes");
    assert.deepEqual(dialled, ["203.0.113.10:80", "203.0.113.11:7"]);
  });

  it("allow_all still refuses the never and private tiers, the operator's ranges, and unresolvable names", async () => {
    const { auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    for (const host of [
      "metadata.test",
      "private.test",
      "loopback.test",
      "169.254.169.254",
      "10.0.0.5",
      "127.0.0.1",
      "[::1]",
      "198.51.100.9",
    ]) {
      const r = await get(`http://${host}/`, auth);
      assert.equal(r.status, 403, host);
      const t = await tunnel(`${host}:443`, auth);
      assert.equal(t.status, 403, `CONNECT ${host}`);
      assert.match(t.body, /egress policy|no egress policy opens/);
    }
    assert.equal((await get("http://nowhere.test/", auth)).status, 502);
    assert.match((await get("http://metadata.test/", auth)).body, /resolves only to addresses no egress policy opens/);
    assert.deepEqual(dialled, [], "nothing was dialled");
  });

  it("allowlist: listed names (and *. wildcards) pass, others get 403 for HTTP and a failed CONNECT", async () => {
    const { auth } = await repl({ mode: "allowlist", domains: ["*.allowed.test", "allowed.test"], cidrs: [] });
    assert.equal((await get("http://allowed.test/a", auth)).status, 200);
    assert.equal((await get("http://api.allowed.test/a", auth)).body, "GET api.allowed.test /a ");
    const denied = await get("http://other.test/", auth);
    assert.equal(denied.status, 403);
    assert.match(denied.body, /egress policy does not allow other\.test/);
    assert.equal((await tunnel("other.test:443", auth)).status, 403);
    assert.equal((await tunnel("203.0.113.11:443", auth)).status, 403, "an unlisted address literal");
    const ok = await tunnel("allowed.test:7", auth);
    assert.equal(ok.status, 200);
    ok.socket!.destroy();
  });

  it("allowlist: a listed CIDR opens its addresses (a private one too), but never the never tier", async () => {
    const { auth } = await repl({ mode: "allowlist", domains: [], cidrs: ["203.0.113.11/32", "10.0.0.0/8"] });
    servers["10.0.0.5"] = servers["203.0.113.10"]!;
    try {
      assert.equal((await get("http://203.0.113.11/", auth)).status, 200);
      assert.equal((await get("http://203.0.113.10/", auth)).status, 403);
      assert.equal((await get("http://10.0.0.5/", auth)).status, 200);
      assert.equal((await get("http://private.test/", auth)).status, 403, "the name is not listed");
      assert.equal((await get("http://127.0.0.1/", auth)).status, 403);
    } finally {
      delete servers["10.0.0.5"];
    }
  });

  it("deny_all refuses everything; a repl that is gone is refused; a record without a policy gets the default", async () => {
    const { auth } = await repl({ mode: "deny_all", domains: [], cidrs: [] });
    assert.equal((await get("http://allowed.test/", auth)).status, 403);
    assert.equal((await tunnel("allowed.test:443", auth)).status, 403);
    const gone = await repl();
    await client.del(`replMeta:${gone.replId}`);
    assert.match((await get("http://allowed.test/", gone.auth)).body, /no longer exists/);
    const old = await repl();
    assert.equal((await get("http://allowed.test/", old.auth)).status, 200);
    assert.deepEqual(dialled, ["203.0.113.10:80"]);
  });

  it("a missing or wrong credential is 407 with a challenge, for HTTP and CONNECT", async () => {
    const { replId } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    const forged = `Basic ${Buffer.from(`${replId}:${egressProxyToken("another-secret-0123456789abcdef0", replId)}`).toString("base64")}`;
    const other = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    const swapped = `Basic ${Buffer.from(`${replId}:${egressProxyToken(SECRET, other.replId)}`).toString("base64")}`;
    for (const auth of [undefined, forged, swapped, "Bearer x", "Basic !!!"]) {
      const r = await get("http://allowed.test/", auth);
      assert.equal(r.status, 407, String(auth));
      assert.equal(r.headers["proxy-authenticate"], 'Basic realm="devex-egress"');
      assert.equal((await tunnel("allowed.test:443", auth)).status, 407);
    }
    assert.deepEqual(dialled, []);
  });

  it("a policy change is seen within a second", async () => {
    const { replId, auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    assert.equal((await get("http://other.test/", auth)).status, 200);
    const changed = Date.now();
    await client.hset(
      `replMeta:${replId}`,
      "egress",
      JSON.stringify({ mode: "allowlist", domains: ["allowed.test"], cidrs: [] }),
    );
    // Timed by when each request starts: the cache's age, not the loaded machine's request latency.
    let lastOld = changed;
    for (;;) {
      const startedAt = Date.now();
      if ((await get("http://other.test/", auth)).status !== 200) break;
      lastOld = startedAt;
      assert.ok(startedAt - changed < 3000, "the old policy is still applied");
      await sleep(20);
    }
    assert.ok(lastOld - changed < 1000, `the old policy applied to a request ${lastOld - changed} ms after the change`);
    assert.equal((await get("http://allowed.test/", auth)).status, 200);
  });

  it("bodies stream: the first chunk arrives through the proxy before the server ends the response", async () => {
    const { auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    const req = request({
      host: "127.0.0.1",
      port: proxyPort,
      path: "http://allowed.test/slow",
      headers: { host: "allowed.test", "proxy-authorization": auth },
    });
    req.end();
    const [res] = await once(req, "response");
    const [first] = await once(res, "data");
    assert.equal(String(first), "first;");
    web.emit("go");
    let rest = "";
    for await (const chunk of res) rest += chunk;
    assert.equal(rest, "rest");
  });

  it("fails closed: while the policies cannot be read, every request is 503 and nothing is dialled", async () => {
    const { auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    const unreachable = policyRedis(`redis://127.0.0.1:${await freePort()}`);
    const closed = createEgressProxy({
      secret: SECRET,
      policies: redisPolicySource(unreachable, { fallback: { mode: "allow_all", domains: [], cidrs: [] } }),
      ranges: new EgressRanges(),
      log: pino({ level: "silent" }),
      resolve: async () => ["203.0.113.10"],
      testOnlyDial: (address, port) => {
        dialled.push(`${address}:${port}`);
        throw new Error("must not dial");
      },
    });
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    try {
      const port = (closed.address() as AddressInfo).port;
      const reply = await new Promise<number>((resolve, reject) => {
        const req = request({
          host: "127.0.0.1",
          port,
          path: "http://allowed.test/",
          headers: { host: "allowed.test", "proxy-authorization": auth },
        });
        req.on("response", (r) => resolve(r.statusCode ?? 0)).on("error", reject);
        req.end();
      });
      assert.equal(reply, 503);
      assert.deepEqual(dialled, []);
    } finally {
      closed.close();
      unreachable.disconnect();
    }
  });

  it("requests that are not proxy requests get 400 with what to do", async () => {
    const res = await fetch(`http://127.0.0.1:${proxyPort}/just-a-path`);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /send absolute URLs/);
    const { auth } = await repl({ mode: "allow_all", domains: [], cidrs: [] });
    assert.equal((await get("https://allowed.test/", auth)).status, 400);
  });
});
