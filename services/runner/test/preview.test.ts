import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { startTestRunner, type TestRunner } from "./helpers.js";

describe("runner preview proxy", () => {
  let t: TestRunner;
  let app: Server;
  let port: number;
  const seen: Array<{ url: string; cookie?: string; authorization?: string }> = [];

  before(async () => {
    t = await startTestRunner();
    app = createServer((req, res) => {
      seen.push({ url: req.url!, cookie: req.headers.cookie, authorization: req.headers.authorization });
      res.writeHead(200, { "content-type": "text/plain", "set-cookie": "app=1; Path=/" });
      res.end(`app saw ${req.method} ${req.url}`);
    });
    const wss = new WebSocketServer({ server: app });
    wss.on("connection", (ws, req) => {
      seen.push({ url: req.url!, cookie: req.headers.cookie });
      ws.on("message", (m) => ws.send(`echo ${req.url} ${m}`));
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    port = (app.address() as AddressInfo).port;
  });
  after(async () => {
    app?.close();
    await t?.close();
  });

  it("forwards HTTP with the prefix stripped, authenticated by header, without platform cookies", async () => {
    const res = await fetch(`${t.runner.url}/preview/${port}/api/x?q=1`, {
      // On a host shared with core the browser also sends core's session cookie.
      headers: { authorization: `Bearer ${t.token}`, cookie: "devex_session=core-session; mine=2; devex_preview=x" },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "app saw GET /api/x?q=1");
    assert.equal(seen.at(-1)!.authorization, undefined, "the runner token is not forwarded");
    assert.equal(seen.at(-1)!.cookie, "mine=2");
  });

  it("?token= sets an HttpOnly cookie scoped to the port's path, which then authenticates", async () => {
    const res = await fetch(`${t.runner.url}/preview/${port}/index.html?token=${t.token}&a=b`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "app saw GET /index.html?a=b");
    const cookies = res.headers.getSetCookie();
    const ours = cookies.find((c) => c.startsWith("devex_preview="))!;
    assert.match(ours, new RegExp(`Path=/preview/${port}/; HttpOnly`));
    assert.ok(cookies.includes("app=1; Path=/"));
    const sub = await fetch(`${t.runner.url}/preview/${port}/style.css`, { headers: { cookie: ours.split(";")[0] } });
    assert.equal(sub.status, 200);
    assert.equal(seen.at(-1)!.cookie, undefined, "the preview cookie is not forwarded");
  });

  it("refuses without a token and answers 502 when nothing listens", async () => {
    assert.equal((await fetch(`${t.runner.url}/preview/${port}/`)).status, 401);
    const dead = await fetch(`${t.runner.url}/preview/1/`, { headers: { authorization: `Bearer ${t.token}` } });
    assert.equal(dead.status, 502);
    assert.match(await dead.text(), /nothing answered on port 1/);
  });

  it("forwards WebSocket upgrades, without platform cookies", async () => {
    const ws = new WebSocket(`${t.runner.url.replace("http", "ws")}/preview/${port}/live?token=${t.token}`, {
      headers: { cookie: "devex_session=core-session; mine=3" },
    });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on("open", () => ws.send("hi"));
      ws.on("message", (m) => resolve(m.toString()));
      ws.on("error", reject);
    });
    assert.equal(reply, "echo /live hi");
    assert.equal(seen.at(-1)!.cookie, "mine=3");
    ws.close();
  });
});
