/**
 * Malformed bytes are the client's error: a binary request whose string field holds invalid UTF-8
 * (0xff 0xfe) is InvalidArgument naming the field, over Connect (application/proto), gRPC (h2c)
 * and gRPC-Web, against a real runner with raw bodies. Valid multi-byte text still passes.
 */
import assert from "node:assert/strict";
import { connect } from "node:http2";
import { startTestRunner, type TestRunner } from "./helpers.js";

/** StatFileRequest { path = <bytes> } in the protobuf wire format. */
const statFileRequest = (path: Buffer) => Buffer.concat([Buffer.from([0x0a, path.length]), path]);
const INVALID = Buffer.from([0xff, 0xfe]);
const MESSAGE = /request is not valid protobuf: invalid UTF-8 in the string field "path" of StatFileRequest/;
const METHOD = "/devex.runner.v1.FileService/StatFile";

/** A gRPC(-Web) length-prefixed message frame. */
const frame = (m: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, m.length]), m]);

/** Sends one gRPC call over h2c and returns grpc-status and grpc-message from the trailers. */
function grpcCall(url: string, token: string, body: Buffer): Promise<{ status: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": METHOD,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    let headers: Record<string, unknown> = {};
    req.on("response", (h) => {
      headers = h;
    });
    req.on("trailers", (t) => {
      headers = { ...headers, ...t };
    });
    req.on("data", () => {});
    req.on("end", () => {
      session.close();
      resolve({ status: String(headers["grpc-status"]), message: decodeURIComponent(String(headers["grpc-message"])) });
    });
    req.on("error", reject);
    req.end(frame(body));
  });
}

describe("invalid UTF-8 in a binary request (runner)", () => {
  let t: TestRunner;
  before(async () => {
    t = await startTestRunner();
  });
  after(() => t?.close());

  it("Connect (application/proto): HTTP 400 invalid_argument naming the field", async () => {
    const res = await fetch(`${t.runner.url}${METHOD}`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${t.token}` },
      body: statFileRequest(INVALID),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, MESSAGE);
  });

  it("gRPC over h2c: status 3 (INVALID_ARGUMENT) naming the field", async () => {
    const r = await grpcCall(t.runner.url, t.token, statFileRequest(INVALID));
    assert.equal(r.status, "3");
    assert.match(r.message, MESSAGE);
  });

  it("gRPC-Web: status 3 naming the field", async () => {
    const res = await fetch(`${t.runner.url}${METHOD}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${t.token}` },
      body: frame(statFileRequest(INVALID)),
    });
    const text = Buffer.from(await res.arrayBuffer()).toString("latin1");
    assert.match(text, /grpc-status: ?3\b/);
    assert.match(decodeURIComponent(/grpc-message: ?(.*)/.exec(text)?.[1].trim() ?? ""), MESSAGE);
  });

  it("valid multi-byte UTF-8 is not refused (the file is just missing)", async () => {
    const r = await grpcCall(t.runner.url, t.token, statFileRequest(Buffer.from("é😀.txt")));
    assert.equal(r.status, "5"); // NOT_FOUND
  });
});
