import assert from "node:assert/strict";
import { createServer as createHttp1Server, request as httpRequest } from "node:http";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "mocha";
import { requestChunks } from "./request-chunks.js";

/** An h2c server handing each request (compat API, as connect-node's adapter gets it) to the test. */
async function startServer() {
  const waiting: Array<(r: { req: Http2ServerRequest; res: Http2ServerResponse }) => void> = [];
  const server: Http2Server = createServer((req, res) => waiting.shift()?.({ req, res }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const session: ClientHttp2Session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return {
    /** A request from the client, and the server's side of it. */
    async open(): Promise<{ client: ClientHttp2Stream; req: Http2ServerRequest; res: Http2ServerResponse }> {
      const arrived = new Promise<{ req: Http2ServerRequest; res: Http2ServerResponse }>((r) => waiting.push(r));
      const client = session.request({ ":method": "POST", ":path": "/" });
      client.on("error", () => {});
      client.resume();
      return { client, ...(await arrived) };
    },
    close() {
      session.destroy();
      server.close();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a request body read without generators (lib/kit/request-chunks.ts)", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("reads every byte in order, ends when the client ends, and leaves the request alone", async () => {
    const { client, req, res } = await server.open();
    const sent: Buffer[] = [];
    void (async () => {
      for (let i = 0; i < 200; i++) {
        const chunk = Buffer.alloc(1 + ((i * 977) % 5000), i);
        sent.push(chunk);
        client.write(chunk);
        if (i % 20 === 0) await sleep(1);
      }
      client.end();
    })();
    const got: Uint8Array[] = [];
    for await (const chunk of requestChunks(req)) got.push(chunk);
    assert.ok(Buffer.concat(got).equals(Buffer.concat(sent)));
    assert.equal(req.destroyed, false, "a body read to its end is not destroyed (Node's iterator does the same)");
    res.end();
  });

  it("ends at the client's reset as Node's own iterator does (connect learns of it from the stream)", async () => {
    // Node's compat request ends its body when the stream closes, reset or not; connect-node aborts
    // the call's signal with the reset code. Both readers must see the same.
    const outcomes: string[] = [];
    for (const read of [(r: Http2ServerRequest) => requestChunks(r), (r: Http2ServerRequest) => r]) {
      const { client, req } = await server.open();
      client.write(Buffer.alloc(10));
      let bytes = 0;
      try {
        for await (const chunk of read(req)) {
          bytes += (chunk as Uint8Array).byteLength;
          if (bytes === 10) client.close(8); // NGHTTP2_CANCEL
        }
        outcomes.push(`ended after ${bytes}`);
      } catch (e) {
        outcomes.push(`failed after ${bytes}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(outcomes, ["ended after 10", "ended after 10"]);
  });

  it("destroys the request when the reader stops before the end, and the response still ends", async () => {
    const { client, req, res } = await server.open();
    client.write(Buffer.alloc(10));
    const status = new Promise<unknown>((r) => client.once("response", (h) => r(h[":status"])));
    const ended = new Promise<void>((r) => client.once("end", () => r()));
    for await (const chunk of requestChunks(req)) {
      assert.equal(chunk.byteLength, 10);
      break;
    }
    assert.equal(req.destroyed, true);
    res.end("done");
    assert.equal(await status, 200);
    await ended;
  });

  it("reads only as fast as it is asked: a reader that waits holds the client back (flow control)", async () => {
    const { client, req, res } = await server.open();
    const total = 4 * 1024 * 1024;
    let written = 0;
    const writeAll = (async () => {
      while (written < total) {
        const ok = client.write(Buffer.alloc(64 * 1024));
        written += 64 * 1024;
        if (!ok) await new Promise((r) => client.once("drain", r));
      }
      client.end();
    })();
    const it = requestChunks(req)[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    await sleep(300);
    // HTTP/2's windows (64 KiB for the stream by default) and the request's buffer hold the rest back.
    // The client could put only the windows' worth on the wire: a reader that drained the request
    // into its own buffer would have let all 4 MiB through.
    const onTheWire = written - client.writableLength;
    assert.ok(onTheWire < 1024 * 1024, `the client sent ${onTheWire} bytes that nobody asked for`);
    let read = first.value.byteLength;
    for (let r = await it.next(); !r.done; r = await it.next()) read += r.value.byteLength;
    await writeAll;
    assert.equal(read, total);
    res.end();
  });
});

describe("a request body read without generators, over HTTP/1.1 (lib/kit/request-chunks.ts)", () => {
  it("stops reading early and still answers on the same socket, as Node's iterator does", async () => {
    const server = createHttp1Server(async (req, res) => {
      for await (const chunk of requestChunks(req)) {
        assert.ok(chunk.byteLength > 0);
        break; // as a handler does on a request over readMaxBytes
      }
      res.end("refused");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          { port: (server.address() as AddressInfo).port, host: "127.0.0.1", method: "POST", path: "/" },
          (res) => {
            let body = "";
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve(`${res.statusCode} ${body}`));
          },
        );
        req.on("error", reject);
        req.write(Buffer.alloc(100)); // the body stays open
      });
      assert.equal(answer, "200 refused");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("the reader as an async iterator (lib/kit/request-chunks.ts)", () => {
  it("answers calls one at a time, in order, and done after return() or an error", async () => {
    const body = new PassThrough();
    const it = requestChunks(body)[Symbol.asyncIterator]();
    const first = it.next();
    const second = it.next(); // made while the first waits
    body.write("a");
    setTimeout(() => body.write("b"), 20);
    assert.equal(Buffer.from((await first).value as Uint8Array).toString(), "a");
    assert.equal(Buffer.from((await second).value as Uint8Array).toString(), "b");
    const waiting = it.next();
    await it.return?.();
    assert.deepEqual(await waiting, { done: true, value: undefined }, "a read waiting at return() ends");
    assert.deepEqual(await it.next(), { done: true, value: undefined });

    const failing = new PassThrough();
    const it2 = requestChunks(failing)[Symbol.asyncIterator]();
    const read = it2.next();
    failing.destroy(new Error("the client went away"));
    await assert.rejects(read, /the client went away/);
    assert.deepEqual(await it2.next(), { done: true, value: undefined });
  });
});
