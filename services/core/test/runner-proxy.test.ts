/**
 * Core's /<replId>/ proxy (embedded setup) against a stand-in runner that records what reaches it:
 * core's own session cookie never does, over HTTP or a WebSocket upgrade; everything else does.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { createRunnerProxy } from "../src/driver/local/proxy.js";

describe("core's runner proxy", () => {
  const replId = "r0123456789ab";
  const seen: IncomingHttpHeaders[] = [];
  let runner: Server;
  let core: Server;
  let coreUrl: string;

  before(async () => {
    runner = createServer((req, res) => {
      seen.push(req.headers);
      res.end(`runner saw ${req.url}`);
    });
    new WebSocketServer({ server: runner }).on("connection", (ws, req) => {
      seen.push(req.headers);
      ws.send("hello");
    });
    await new Promise<void>((r) => runner.listen(0, "127.0.0.1", r));
    const target = { url: `http://127.0.0.1:${(runner.address() as AddressInfo).port}` };
    const proxy = createRunnerProxy((id) => (id === replId ? target : undefined));
    core = createServer((req, res) => {
      if (!proxy.http(req, res)) res.writeHead(404).end();
    });
    core.on("upgrade", (req, socket, head) => {
      if (!proxy.upgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((r) => core.listen(0, "127.0.0.1", r));
    coreUrl = `http://127.0.0.1:${(core.address() as AddressInfo).port}`;
  });
  after(() => {
    core?.close();
    runner?.close();
  });

  it("forwards HTTP without core's session cookie, keeping the runner's and the app's", async () => {
    const res = await fetch(`${coreUrl}/${replId}/preview/3000/page`, {
      headers: { cookie: "devex_session=the-users-session; devex_preview=t; app=1", authorization: "Bearer x" },
    });
    assert.equal(await res.text(), "runner saw /preview/3000/page");
    assert.equal(seen.at(-1)!.cookie, "devex_preview=t; app=1");
    assert.equal(seen.at(-1)!.authorization, "Bearer x");
  });

  it("drops the Cookie header when core's session cookie was all of it", async () => {
    await (await fetch(`${coreUrl}/${replId}/x`, { headers: { cookie: "devex_session=s" } })).text();
    assert.equal(seen.at(-1)!.cookie, undefined);
  });

  it("forwards WebSocket upgrades without core's session cookie", async () => {
    const ws = new WebSocket(`${coreUrl.replace("http", "ws")}/${replId}/ws/terminals/t1`, {
      headers: { cookie: "devex_session=the-users-session; app=2" },
    });
    const first = await new Promise<string>((resolve, reject) => {
      ws.on("message", (m) => resolve(m.toString()));
      ws.on("error", reject);
    });
    ws.close();
    assert.equal(first, "hello");
    assert.equal(seen.at(-1)!.cookie, "app=2");
  });
});
