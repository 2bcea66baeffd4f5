/**
 * Core's /<replId>/ proxy ties the lifetimes of its two sides together, against a stand-in runner
 * that records when its requests close: a client that leaves cancels the runner's side even before
 * the runner answered, a runner that dies ends the client's response (over HTTP and WebSocket), and
 * an early answer over HTTP/2 ends just that stream. (runner-proxy-abuse.e2e.test.ts does the same against a real runner.)
 */
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import { connect as connectH2, createServer as createH2Server, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { createRunnerProxy } from "../src/driver/local/proxy.js";

const replId = "r0123456789ab";

function listen(server: Server | Http2Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

describe("core's runner proxy: both sides end together", () => {
  const servers: (Server | Http2Server)[] = [];
  let held: Promise<void> | undefined;
  let heldArrived: () => void;
  let http1: string;
  let wsClosed: Promise<void> | undefined;
  let http2: string;

  before(async () => {
    const runner = createServer((req, res) => {
      if (req.url === "/hold") {
        // A stream with nothing to say yet: no headers until its first message.
        held = new Promise((closed) => res.once("close", closed));
        heldArrived();
      } else if (req.url === "/die") {
        res.writeHead(200, { "content-type": "application/connect+proto" });
        res.write("first part");
        setTimeout(() => req.socket.destroy(), 50);
      }
    });
    new WebSocketServer({ server: runner }).on("connection", (ws, req) => {
      wsClosed = new Promise((closed) => ws.once("close", () => closed()));
      if (req.url === "/ws/die") ws.terminate();
      else ws.send("hello");
    });
    servers.push(runner);
    const target = { url: await listen(runner) };
    const proxy = createRunnerProxy((id) => (id === replId ? target : undefined), "api");
    const front1 = createServer((req, res) => void proxy.http(req, res));
    front1.on("upgrade", (req, socket, head) => proxy.upgrade(req, socket, head));
    const front2 = createH2Server((req, res) => void proxy.http(req, res));
    servers.push(front1, front2);
    http1 = await listen(front1);
    http2 = await listen(front2);
  });
  after(() => {
    for (const s of servers) s.close();
  });

  it("a client that leaves before the runner answered cancels the runner's side", async () => {
    const arrived = new Promise<void>((r) => {
      heldArrived = r;
    });
    const req = request(`${http1}/${replId}/hold`, { method: "POST" });
    req.on("error", () => undefined);
    req.end("{}");
    await arrived;
    const left = Date.now();
    req.destroy();
    await Promise.race([
      held,
      new Promise((_, reject) => setTimeout(() => reject(new Error("the runner's side stayed open")), 2000)),
    ]);
    assert.ok(Date.now() - left < 1000);
  });

  it("a runner that dies mid-response ends the client's response", async () => {
    const res = await fetch(`${http1}/${replId}/die`, { method: "POST", signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), (err: Error) => err.name !== "TimeoutError");
  });

  it("WebSocket: a client that leaves closes the runner's socket, and a runner that leaves the client's", async () => {
    const within = (what: string, p: Promise<unknown>) =>
      Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} stayed open`)), 2000))]);
    const ws = new WebSocket(`${http1.replace("http", "ws")}/${replId}/ws/terminals/t1`);
    await new Promise((r) => ws.once("message", r));
    ws.terminate();
    await within("the runner's socket", wsClosed!);
    const dying = new WebSocket(`${http1.replace("http", "ws")}/${replId}/ws/die`);
    await within("the client's socket", new Promise((r) => dying.once("close", r)));
  });

  it("HTTP/2: a refused body ends its stream with the answer; the connection serves on", async () => {
    const session = connectH2(http2);
    try {
      const post = (path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const stream = session.request({ ":method": "POST", ":path": path });
          let status = 0;
          let body = "";
          stream.on("response", (h) => {
            status = Number(h[":status"]);
          });
          stream.on("data", (d) => {
            body += d;
          });
          stream.on("close", () => resolve({ status, body }));
          stream.on("error", reject);
          stream.write(Buffer.alloc(1024 * 1024)); // more than the stream's window: never all read
          setTimeout(() => reject(new Error("the stream stayed open")), 3000);
        });
      const first = await post(`/${replId}/preview/3000/`);
      assert.equal(first.status, 404);
      assert.match(first.body, /preview origin/);
      assert.equal((await post("/r000000000000/x")).status, 503, "the same connection still serves");
    } finally {
      session.close();
    }
  });
});
