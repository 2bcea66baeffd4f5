/**
 * Core's /<replId>/ proxy (embedded setup) against a stand-in runner that records what reaches it.
 * Two origins: "api" (core's own) serves every route but previews, "preview" serves previews only,
 * so a dev server's page never runs on core's origin. Core's session cookie never reaches a runner,
 * over HTTP or a WebSocket upgrade; every other header does.
 */

import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { localhostLookup, previewFetch } from "../../../lib/testing/preview-fetch.js";
import { createRunnerProxy, type ProxyScope } from "../src/driver/local/proxy.js";

describe("core's runner proxy", () => {
  const replId = "r0123456789ab";
  const seen: IncomingHttpHeaders[] = [];
  const servers: Server[] = [];
  const origin: Partial<Record<ProxyScope, string>> = {};

  before(async () => {
    const runner = createServer((req, res) => {
      seen.push(req.headers);
      res.end(`runner saw ${req.url}`);
    });
    new WebSocketServer({ server: runner }).on("connection", (ws, req) => {
      seen.push(req.headers);
      ws.send(`hello ${req.url}`);
    });
    servers.push(runner);
    await new Promise<void>((r) => runner.listen(0, "127.0.0.1", r));
    const target = { url: `http://127.0.0.1:${(runner.address() as AddressInfo).port}` };
    for (const scope of ["api", "preview"] as const) {
      const proxy = createRunnerProxy((id) => (id === replId ? target : undefined), scope);
      const server = createServer((req, res) => {
        if (!proxy.http(req, res)) res.writeHead(404).end();
      });
      server.on("upgrade", (req, socket, head) => {
        if (!proxy.upgrade(req, socket, head)) socket.destroy();
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      origin[scope] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }
  });
  after(() => {
    for (const s of servers) s.close();
  });

  const firstMessage = (url: string, cookie: string) =>
    new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { cookie }, lookup: localhostLookup as never });
      ws.on("message", (m) => {
        resolve(m.toString());
        ws.close();
      });
      ws.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.on("error", reject);
    });

  it("api origin: forwards the runner's API without core's session cookie", async () => {
    const res = await fetch(`${origin.api}/${replId}/devex.runner.v1.FileService/ListFiles`, {
      method: "POST",
      headers: { cookie: "devex_session=the-users-session; app=1", authorization: "Bearer x" },
    });
    assert.equal(await res.text(), "runner saw /devex.runner.v1.FileService/ListFiles");
    assert.equal(seen.at(-1)!.cookie, "app=1");
    assert.equal(seen.at(-1)!.authorization, "Bearer x");
    await (await fetch(`${origin.api}/${replId}/x`, { headers: { cookie: "devex_session=s" } })).text();
    assert.equal(seen.at(-1)!.cookie, undefined, "no Cookie header when the session cookie was all of it");
  });

  it("api origin: WebSocket upgrades (the terminal bridge) without core's session cookie", async () => {
    const hello = await firstMessage(
      `${origin.api!.replace("http", "ws")}/${replId}/ws/terminals/t1`,
      "devex_session=s; a=2",
    );
    assert.equal(hello, "hello /ws/terminals/t1");
    assert.equal(seen.at(-1)!.cookie, "a=2");
  });

  it("api origin: refuses previews, over HTTP and WebSocket", async () => {
    const n = seen.length;
    const res = await fetch(`${origin.api}/${replId}/preview/3000/`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /preview origin/);
    await assert.rejects(firstMessage(`${origin.api!.replace("http", "ws")}/${replId}/preview/3000/live`, ""), /404/);
    assert.equal(seen.length, n, "nothing reached the runner");
  });

  /** The repl's own preview origin on the preview port: `<replId>.localhost:<port>`. */
  const replOrigin = () => origin.preview!.replace("127.0.0.1", `${replId}.localhost`);

  it("preview origin: forwards previews without core's session cookie, keeping the runner's and the app's", async () => {
    const res = await previewFetch(`${replOrigin()}/preview/3000/page?x=1`, {
      headers: { cookie: "devex_session=the-users-session; devex_preview=t; app=1" },
    });
    assert.equal(await res.text(), "runner saw /preview/3000/page?x=1");
    assert.equal(seen.at(-1)!.cookie, "devex_preview=t; app=1");
    const hello = await firstMessage(`${replOrigin().replace("http", "ws")}/preview/3000/live`, "devex_session=s");
    assert.equal(hello, "hello /preview/3000/live");
    assert.equal(seen.at(-1)!.cookie, undefined);
  });

  it("preview origin: serves a repl's previews only on its own host, and nothing that is not a preview", async () => {
    const n = seen.length;
    // Below a path on the bare host, every repl would share one origin.
    const shared = await previewFetch(`${origin.preview}/${replId}/preview/3000/page`);
    assert.equal(shared.status, 404);
    assert.match(await shared.text(), /origin of their own/);
    await assert.rejects(
      firstMessage(`${origin.preview!.replace("http", "ws")}/${replId}/preview/3000/live`, ""),
      /404/,
    );
    const unknown = await previewFetch(
      `${origin.preview!.replace("127.0.0.1", "r999999999999.localhost")}/preview/3000/`,
    );
    assert.equal(unknown.status, 503, "a repl that is not running");
    const res = await previewFetch(`${replOrigin()}/devex.runner.v1.FileService/ListFiles`, { method: "POST" });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /previews only/);
    await assert.rejects(firstMessage(`${replOrigin().replace("http", "ws")}/ws/terminals/t1`, ""), /404/);
    assert.equal(seen.length, n, "nothing reached the runner");
  });
});
