import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { REPL, startTestRunner, type TestRunner } from "./helpers.js";

describe("runner preview proxy", () => {
  let t: TestRunner;
  let app: Server;
  let port: number;
  const seen: Array<{ url: string; cookie?: string; authorization?: string }> = [];
  const seenReferer: Array<string | undefined> = [];

  before(async () => {
    t = await startTestRunner();
    app = createServer((req, res) => {
      seen.push({ url: req.url!, cookie: req.headers.cookie, authorization: req.headers.authorization });
      seenReferer.push(req.headers.referer);
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
    assert.match(ours, new RegExp(`Path=/preview/${port}/; Max-Age=(599|600); HttpOnly; SameSite=Lax$`));
    assert.ok(cookies.includes("app=1; Path=/"));
    const sub = await fetch(`${t.runner.url}/preview/${port}/style.css`, { headers: { cookie: ours.split(";")[0] } });
    assert.equal(sub.status, 200);
    assert.equal(seen.at(-1)!.cookie, undefined, "the preview cookie is not forwarded");
  });

  it("puts an ingress's stripped prefix (X-Forwarded-Prefix: /<replId>) in the cookie's path, and no other", async () => {
    const url = `${t.runner.url}/preview/${port}/?token=${t.token}`;
    const cookieOf = async (prefix: string) =>
      (await fetch(url, { headers: { "x-forwarded-prefix": prefix } })).headers
        .getSetCookie()
        .find((c) => c.startsWith("devex_preview="));
    assert.match((await cookieOf(`/${REPL}`))!, new RegExp(`Path=/${REPL}/preview/${port}/;`));
    assert.match((await cookieOf("/elsewhere"))!, new RegExp(`Path=/preview/${port}/;`));
  });

  it("sends a page opened with ?token= in a tab to its address without the token", async () => {
    const res = await fetch(`${t.runner.url}/preview/${port}/docs/page?token=${t.token}&a=b`, {
      headers: { "sec-fetch-dest": "document" },
      redirect: "manual",
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "./page?a=b");
    assert.match(res.headers.getSetCookie()[0], /^devex_preview=/);
  });

  it("in a frame of another site, keeps the token in a partitioned cookie (a Lax one would not come back)", async () => {
    const res = await fetch(`${t.runner.url}/preview/${port}/?token=${t.token}`, {
      headers: { "sec-fetch-site": "cross-site", "sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate" },
    });
    assert.equal(res.status, 200);
    const ours = res.headers.getSetCookie().find((c) => c.startsWith("devex_preview="))!;
    assert.match(ours, /HttpOnly; SameSite=None; Partitioned; Secure$/);
  });

  it("keeps only a token that let the request in, and never passes the token on in a Referer", async () => {
    const forged = t.mint({ repl: "another-repl" });
    const res = await fetch(`${t.runner.url}/preview/${port}/?token=${forged}`, {
      headers: { authorization: `Bearer ${t.token}`, referer: `http://x/preview/${port}/page?token=${t.token}&a=1` },
    });
    assert.equal(res.status, 200);
    assert.equal(
      res.headers.getSetCookie().find((c) => c.startsWith("devex_preview=")),
      undefined,
      "the bearer token let it in, not the one in the address",
    );
    assert.equal(seenReferer.at(-1), `http://x/preview/${port}/page?a=1`);
  });

  it("drops a preview cookie that no longer opens anything, and treats the request as one without a token", async () => {
    const stale = t.mint({}, 60, Date.now() - 3_600_000);
    const res = await fetch(`${t.runner.url}/preview/${port}/`, { headers: { cookie: `devex_preview=${stale}` } });
    assert.equal(res.status, 401);
    assert.match(await res.text(), /this preview is private/);
    assert.equal(res.headers.getSetCookie()[0], `devex_preview=; Path=/preview/${port}/; Max-Age=0`);
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
