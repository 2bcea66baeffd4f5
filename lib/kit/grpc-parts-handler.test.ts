import assert from "node:assert/strict";
import {
  type ClientHttp2Session,
  createServer as createHttp2Server,
  type Http2Server,
  connect as http2Connect,
  constants as http2Constants,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import {
  create,
  createFileRegistry,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import {
  type DownloadFileRequest,
  DownloadFileRequestSchema,
  DownloadFileResponseSchema,
  FileService,
} from "../../gen/devex/runner/v1/file_pb.js";
import { ExecRequestSchema, ExecResponseSchema, ProcessService } from "../../gen/devex/runner/v1/process_pb.js";
import { AttachRequestSchema, AttachResponseSchema, TerminalService } from "../../gen/devex/runner/v1/terminal_pb.js";
import { grpcClient } from "../testing/grpc-client.js";
import { aloneBytesParser, MIN_PART_BYTES, partsEncoder } from "./bytes-parts.js";
import { errorInterceptor } from "./errors.js";
import { withPartsStreams } from "./grpc-parts-handler.js";
import { createLogger } from "./log.js";
import { withNodeRequest } from "./node-request.js";
import { EnvelopeSplitter } from "./request-messages.js";
import { type ResponseLane, responseLane } from "./response-lane.js";
import { startServer } from "./server.js";
import { validateInterceptor } from "./validate.js";

type ExecEvent = NonNullable<MessageInitShape<typeof ExecResponseSchema>["event"]>;
type Download = MessageInitShape<typeof DownloadFileResponseSchema>;

/** Bytes that show where they came from: every byte of `n` differs from its neighbour's. */
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** What each test stream sends, by request: the Exec command's first word, the download's path. */
const execScripts: Record<string, ExecEvent[] | "fail" | "crash"> = {
  sizes: [0, 1, MIN_PART_BYTES - 1, MIN_PART_BYTES, 65_539, 1 << 20].map((n, i) => ({
    case: i % 2 ? "stderr" : "stdout",
    value: bytes(n, i),
  })),
  mixed: [
    { case: "started", value: { pid: 42 } },
    { case: "stdout", value: bytes(70_000) },
    { case: "stderr", value: bytes(12) },
    { case: "exit", value: { exitCode: 3, signal: "", timedOut: false } },
  ],
  fail: "fail",
  crash: "crash",
};
const downloads: Record<string, Download[]> = {
  "/all-fields": [
    { info: { path: "/a", name: "a", size: 300_000n, mode: 0o644 }, chunk: bytes(200_000), sha256: "ab".repeat(32) },
  ],
  "/chunk-then-sha": [{ chunk: bytes(100_000) }, { chunk: bytes(5000), sha256: "cd".repeat(32) }],
  "/small": [{ info: { path: "/s" }, chunk: bytes(10) }],
  "/too-large": [{ chunk: bytes(300_000) }],
};
const payloads = new Set<Uint8Array>();

/** What the lane tests' streams saw: whether each call had a lane, and the lane's figures. */
const laneSeen: boolean[] = [];
const laneFigures = {
  backlogAfterWrites: -1,
  backlogWhenSent: -1,
  sent: [] as number[],
  cancelledSent: false,
  cancelledPayload: new Uint8Array(),
  lateWrite: "",
};
/** Lane scripts: messages written to the lane, between a yielded first and last one. */
const laneWrites = [bytes(9000), bytes(10), bytes(70_000, 3)];

/** Exec scripts that use the call's response lane, where it has one, and yield where it has not. */
async function* laneScript(
  word: string,
  lane: ResponseLane | undefined,
  signal: AbortSignal,
): AsyncGenerator<MessageInitShape<typeof ExecResponseSchema>> {
  const out = (data: Uint8Array, i = 0) => ({ event: { case: i % 2 ? "stderr" : "stdout", value: data } as ExecEvent });
  if (word === "lane-early") lane?.write(create(ExecResponseSchema, out(bytes(1))));
  yield { event: { case: "started", value: { pid: 1 } } };
  if (word === "lane") {
    for (const [i, data] of laneWrites.entries()) {
      if (lane) lane.write(create(ExecResponseSchema, out(data, i)));
      else yield out(data, i);
      if (i === 1) yield out(bytes(5000, 9)); // a yielded message between lane writes
    }
  }
  if (word === "lane-backlog" && lane) {
    const all: Promise<void>[] = [];
    for (let i = 0; i < 32; i++) {
      all.push(
        new Promise((resolve) =>
          lane.write(create(ExecResponseSchema, out(bytes(65_536, i))), () => {
            laneFigures.sent.push(i);
            resolve();
          }),
        ),
      );
    }
    laneFigures.backlogAfterWrites = lane.backlog();
    await Promise.all(all);
    laneFigures.backlogWhenSent = lane.backlog();
  }
  if (word === "lane-cancel" && lane) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    laneFigures.cancelledPayload = bytes(10_000);
    await new Promise<void>((resolve) =>
      lane.write(create(ExecResponseSchema, out(laneFigures.cancelledPayload)), resolve),
    );
    laneFigures.cancelledSent = true;
  }
  if (word === "lane-late" && lane) {
    // 2 MiB behind the client's window: connect waits for the stream to drain before it asks for
    // more, while this handler is suspended at the yield below, when the timer writes.
    for (let i = 0; i < 32; i++) lane.write(create(ExecResponseSchema, out(bytes(65_536, i))));
    setTimeout(() => {
      try {
        lane.write(create(ExecResponseSchema, out(bytes(10))));
        laneFigures.lateWrite = "written";
      } catch (e) {
        laneFigures.lateWrite = (e as Error).message;
      }
    }, 0);
    yield out(bytes(10, 7));
  }
  yield { event: { case: "exit", value: { exitCode: 0, signal: "", timedOut: false } } };
}

/** Every RPC shape that streams responses: server streams with a oneof and with plain fields, and bidi. */
function routes(router: ConnectRouter) {
  router.service(
    ProcessService,
    {
      async *exec(req, ctx) {
        const word = req.command?.argv[0] ?? "";
        if (word.startsWith("lane")) {
          laneSeen.push(ctx.values.get(responseLane) !== undefined);
          for await (const init of laneScript(word, ctx.values.get(responseLane), ctx.signal)) {
            yield create(ExecResponseSchema, init);
          }
          return;
        }
        const script = execScripts[word];
        if (script === "crash") throw new Error("backend text the client must not see");
        for (const event of script === "fail" ? (execScripts.mixed as ExecEvent[]).slice(0, 2) : script) {
          if (event.value instanceof Uint8Array) payloads.add(event.value);
          yield create(ExecResponseSchema, { event });
        }
        if (script === "fail") throw new ConnectError("the process vanished", Code.FailedPrecondition);
      },
    },
    { acceptCompression: [] },
  );
  router.service(
    FileService,
    {
      async *downloadFile(req: DownloadFileRequest) {
        for (const init of downloads[req.path]) {
          if (init.chunk) payloads.add(init.chunk as Uint8Array);
          yield create(DownloadFileResponseSchema, init);
        }
      },
    },
    { acceptCompression: [] },
  );
  // With connect-node's default compression, for the compressed case.
  router.service(TerminalService, {
    async *attach(requests, ctx) {
      laneSeen.push(ctx.values.get(responseLane) !== undefined);
      for await (const r of requests) {
        if (r.frame.case !== "input") continue;
        yield create(AttachResponseSchema, { frame: { case: "output", value: r.frame.value } });
      }
    },
  });
}

const silent = createLogger("parts-test", {
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

/** connect-node over h2c, as the kit serves it, with or without the handlers with parts. */
async function startH2(parts: boolean, writeMaxBytes?: number, readMaxBytes?: number) {
  const options = {
    acceptCompression: [compressionGzip, compressionBrotli],
    interceptors: [errorInterceptor(silent), validateInterceptor()],
    writeMaxBytes,
    readMaxBytes,
    // As the kit's servers record it: each call's Node request, for lanes and the request reader.
    contextValues: withNodeRequest,
  };
  const server: Http2Server = createHttp2Server(
    {},
    connectNodeAdapter({ ...options, routes: (r) => routes(parts ? withPartsStreams(r, options) : r) }),
  );
  /** Every chunk the handler wrote to an HTTP/2 stream, by identity. */
  const written = new Set<unknown>();
  server.on("stream", (stream) => {
    const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      written.add(chunk);
      return write(chunk, ...rest);
    }) as typeof stream.write;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, written, close: () => new Promise<void>((r) => server.close(() => r())) };
}

interface RawResponse {
  status: unknown;
  contentType: unknown;
  encoding: unknown;
  body: Buffer;
  trailers: Record<string, unknown>;
}

/** `message` gzipped in a gRPC envelope flagged compressed. */
function gzipEnvelope(message: Uint8Array): Buffer {
  const data = gzipSync(message);
  const out = Buffer.alloc(5 + data.byteLength);
  out[0] = 1;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

/** `message` in a gRPC envelope (uncompressed). */
function envelope(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.byteLength);
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

/** Request messages, each enveloped; or bytes as they are, written `piece` bytes at a time. */
type RequestBody = Uint8Array[] | { raw: Uint8Array; piece?: number };

/** A gRPC request's stream on `session`, its headers sent. */
function grpcRequest(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}) {
  return session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers,
  });
}

/** One gRPC call with a raw HTTP/2 client: what went over the wire, byte for byte. */
async function rawCall(
  url: string,
  path: string,
  requests: RequestBody,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const session = http2Connect(url);
  try {
    const stream = grpcRequest(session, path, headers);
    const chunks: Buffer[] = [];
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    stream.on("response", (h) => (head = h));
    stream.on("trailers", (t) => (trailers = { ...t }));
    stream.on("data", (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    if (Array.isArray(requests)) {
      for (const r of requests) stream.write(envelope(r));
    } else {
      // Each piece in a DATA frame of its own: the server reads envelopes cut anywhere.
      const piece = requests.piece ?? requests.raw.byteLength;
      for (let at = 0; at < requests.raw.byteLength; at += piece) {
        stream.write(requests.raw.subarray(at, at + piece));
        await new Promise((r) => setImmediate(r));
      }
    }
    stream.end();
    await ended;
    delete trailers.date;
    // The error boundary's reference differs per error.
    if (typeof trailers["grpc-message"] === "string") {
      trailers["grpc-message"] = trailers["grpc-message"].replace(/\(ref%20[0-9a-f]+\)/, "(ref)");
    }
    return {
      status: head[":status"],
      contentType: head["content-type"],
      encoding: head["grpc-encoding"],
      body: Buffer.concat(chunks),
      trailers,
    };
  } finally {
    session.close();
  }
}

const exec = (word: string) => toBinary(ExecRequestSchema, create(ExecRequestSchema, { command: { argv: [word] } }));
const download = (path: string) => toBinary(DownloadFileRequestSchema, create(DownloadFileRequestSchema, { path }));
const input = (data: Uint8Array) =>
  toBinary(AttachRequestSchema, create(AttachRequestSchema, { frame: { case: "input", value: data } }));

const inputs = (...sizes: number[]) => Buffer.concat(sizes.map((n, i) => envelope(input(bytes(n, i)))));
const attachPath = "/devex.runner.v1.TerminalService/Attach";

/** The request cases' expected gRPC status (trailers-only answers carry it in their headers). */
const requestCaseStatus: Record<string, string> = {
  "requests cut every 7 bytes": "0",
  "several requests in one read": "0",
  "a request cut short": String(Code.InvalidArgument),
  "a gzip-compressed request": "0",
  "a compressed request without grpc-encoding": String(Code.Internal),
};

const calls: Array<[name: string, path: string, requests: RequestBody, headers?: Record<string, string>]> = [
  ["requests cut every 7 bytes", attachPath, { raw: inputs(700, 3, 0, 40), piece: 7 }],
  ["several requests in one read", attachPath, { raw: inputs(1, 2, 3, 5000) }],
  ["a request cut short", attachPath, { raw: inputs(10, 10).subarray(0, 20) }],
  [
    "a gzip-compressed request",
    attachPath,
    { raw: Buffer.concat([gzipEnvelope(input(bytes(900))), envelope(input(bytes(4)))]) },
    { "grpc-encoding": "gzip" },
  ],
  ["a compressed request without grpc-encoding", attachPath, { raw: gzipEnvelope(input(bytes(900))) }],
  ["a oneof's bytes at every size around the threshold", "/devex.runner.v1.ProcessService/Exec", [exec("sizes")]],
  ["a oneof's bytes between other events", "/devex.runner.v1.ProcessService/Exec", [exec("mixed")]],
  ["fields on both sides of the bytes", "/devex.runner.v1.FileService/DownloadFile", [download("/all-fields")]],
  ["bytes followed by a field", "/devex.runner.v1.FileService/DownloadFile", [download("/chunk-then-sha")]],
  ["bytes under the threshold", "/devex.runner.v1.FileService/DownloadFile", [download("/small")]],
  [
    "a response compressed on request",
    "/devex.runner.v1.TerminalService/Attach",
    [input(bytes(9000)), input(bytes(300_000))],
    { "grpc-accept-encoding": "gzip" },
  ],
  [
    "bidi: each input echoed",
    "/devex.runner.v1.TerminalService/Attach",
    [input(bytes(9000)), input(bytes(3)), input(bytes(300_000))],
  ],
  [
    // Output frames are the whole message: enveloped without toBinary, at each varint length's edges.
    "bidi: echoes of every length class",
    "/devex.runner.v1.TerminalService/Attach",
    [0, 1, 127, 128, 4095, 4096, 16_383, 16_384].map((n) => input(bytes(n))),
  ],
  ["a response lane's writes between yielded messages", "/devex.runner.v1.ProcessService/Exec", [exec("lane")]],
  ["an error after two messages", "/devex.runner.v1.ProcessService/Exec", [exec("fail")]],
  ["an unexpected error", "/devex.runner.v1.ProcessService/Exec", [exec("crash")]],
  [
    "an invalid request",
    "/devex.runner.v1.ProcessService/Exec",
    [toBinary(ExecRequestSchema, create(ExecRequestSchema))],
  ],
  [
    "JSON (connect's handler either way)",
    "/devex.runner.v1.FileService/DownloadFile",
    [],
    { "content-type": "application/grpc+json" },
  ],
];

type Server = Awaited<ReturnType<typeof startH2>>;

/** For the enclosing suite: a server with the handlers with parts, and one with connect's only. */
function bothServers(): { parts: Server; connect: Server } {
  const servers = {} as { parts: Server; connect: Server };
  before(async () => {
    servers.parts = await startH2(true);
    servers.connect = await startH2(false);
  });
  after(async () => {
    await servers.parts.close();
    await servers.connect.close();
  });
  return servers;
}

describe("gRPC handlers with parts (lib/kit/grpc-parts-handler.ts)", () => {
  const servers = bothServers();

  for (const [name, path, requests, headers] of calls) {
    it(`sends what connect's handler sends, byte for byte: ${name}`, async () => {
      const ours = await rawCall(servers.parts.url, path, requests, headers);
      const theirs = await rawCall(servers.connect.url, path, requests, headers);
      assert.deepEqual(
        { ...ours, body: ours.body.length },
        { ...theirs, body: theirs.body.length },
        "headers, trailers and length",
      );
      assert.ok(ours.body.equals(theirs.body), "the same body bytes");
      if (headers?.["grpc-accept-encoding"]) assert.equal(ours.encoding, "gzip");
      if (name in requestCaseStatus) assert.equal(ours.trailers["grpc-status"], requestCaseStatus[name]);
    });
  }

  it("writes a large bytes field to the HTTP/2 stream as it is, where connect copies it", async () => {
    payloads.clear();
    await rawCall(servers.parts.url, "/devex.runner.v1.ProcessService/Exec", [exec("sizes")]);
    const large = [...payloads].filter((p) => p.byteLength >= MIN_PART_BYTES);
    const small = [...payloads].filter((p) => p.byteLength < MIN_PART_BYTES);
    assert.equal(large.length, 3);
    for (const p of large)
      assert.ok(servers.parts.written.has(p), `the ${p.byteLength}-byte payload was written uncopied`);
    for (const p of small) assert.ok(!servers.parts.written.has(p), `the ${p.byteLength}-byte payload was copied`);

    payloads.clear();
    await rawCall(servers.connect.url, "/devex.runner.v1.ProcessService/Exec", [exec("sizes")]);
    for (const p of payloads) assert.ok(!servers.connect.written.has(p));
  });

  it("refuses a message over writeMaxBytes with ResourceExhausted, as connect does", async () => {
    const small = [await startH2(true, 250_000), await startH2(false, 250_000)];
    try {
      const [ours, theirs] = await Promise.all(
        small.map((s) => rawCall(s.url, "/devex.runner.v1.FileService/DownloadFile", [download("/too-large")])),
      );
      assert.equal(ours.trailers["grpc-status"], String(Code.ResourceExhausted));
      assert.deepEqual(ours, theirs);
    } finally {
      for (const s of small) await s.close();
    }
  });

  it("refuses a request over readMaxBytes with ResourceExhausted, as connect does", async () => {
    const small = [await startH2(true, undefined, 1000), await startH2(false, undefined, 1000)];
    try {
      const [ours, theirs] = await Promise.all(
        small.map((s) => rawCall(s.url, attachPath, [input(bytes(10)), input(bytes(2000))])),
      );
      assert.equal(ours.trailers["grpc-status"], String(Code.ResourceExhausted));
      assert.deepEqual(ours, theirs);
    } finally {
      for (const s of small) await s.close();
    }
  });

  it("is what the kit serves: grpc-js (proto-loader on proto/) reads fields on both sides of the bytes", async () => {
    const server = await startServer({ name: "parts-kit", port: 0, log: silent, routes });
    const written = new Set<unknown>();
    server.http2.on("stream", (stream) => {
      const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
      stream.write = ((chunk: unknown, ...rest: unknown[]) =>
        written.add(chunk) && write(chunk, ...rest)) as typeof stream.write;
    });
    payloads.clear();
    try {
      const client = grpcClient(server.url, "FileService", "");
      const messages: Array<{ info?: { path: string; size: string }; chunk: Buffer; sha256: string }> = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.downloadFile({ path: "/all-fields" });
        call.on("data", (m: (typeof messages)[number]) => messages.push(m));
        call.on("end", resolve);
        call.on("error", reject);
      });
      client.close();
      assert.equal(messages.length, 1);
      assert.equal(messages[0].info?.path, "/a");
      assert.equal(messages[0].info?.size, "300000");
      assert.equal(messages[0].sha256, "ab".repeat(32));
      assert.ok(Buffer.from(bytes(200_000)).equals(messages[0].chunk));
      assert.equal(payloads.size, 1);
      assert.ok(written.has([...payloads][0]), "the chunk went to the stream uncopied");
      // The kit's handlers negotiate connect-node's default compression, as connect's own would.
      const compressed = await rawCall(server.url, "/devex.runner.v1.TerminalService/Attach", [input(bytes(9000))], {
        "grpc-accept-encoding": "gzip",
      });
      assert.equal(compressed.encoding, "gzip");
      assert.equal(compressed.trailers["grpc-status"], "0");
    } finally {
      await server.close();
    }
  });
});

/** The messages in a gRPC response body: each envelope's payload. */
function envelopes(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const size = body.readUInt32BE(at + 1);
    out.push(body.subarray(at + 5, at + 5 + size));
    at += 5 + size;
  }
  return out;
}

describe("response lanes (lib/kit/response-lane.ts)", () => {
  const servers = bothServers();
  const execPath = "/devex.runner.v1.ProcessService/Exec";

  it("opens for binary gRPC over HTTP/2 only: not for compressed responses, Connect, gRPC-web, JSON or connect's handler", async () => {
    laneSeen.length = 0;
    const json = (m: object) => Buffer.from(JSON.stringify(m));
    const probes: Array<[string, string, Uint8Array[], Record<string, string>?]> = [
      [servers.parts.url, execPath, [exec("lane-probe")]],
      [servers.parts.url, attachPath, [input(bytes(3))]],
      [servers.parts.url, attachPath, [input(bytes(3))], { "grpc-accept-encoding": "gzip" }],
      [servers.parts.url, execPath, [exec("lane-probe")], { "content-type": "application/connect+proto" }],
      [servers.parts.url, execPath, [exec("lane-probe")], { "content-type": "application/grpc-web+proto" }],
      [
        servers.parts.url,
        execPath,
        [json({ command: { argv: ["lane-probe"] } })],
        { "content-type": "application/grpc+json" },
      ],
      [servers.connect.url, execPath, [exec("lane-probe")]],
    ];
    for (const [url, path, requests, headers] of probes) await rawCall(url, path, requests, headers);
    assert.deepEqual(laneSeen, [true, true, false, false, false, false, false]);
  });

  it("fails a call that writes to its lane before its first message, and sends nothing of it", async () => {
    const res = await rawCall(servers.parts.url, execPath, [exec("lane-early")]);
    assert.equal(res.trailers["grpc-status"] ?? res.status, String(Code.Internal));
    assert.equal(res.body.length, 0);
    assert.doesNotMatch(JSON.stringify(res.trailers), /lane/);
  });

  it("refuses a write while a yielded message is on its way (the handler suspended at its yield)", async () => {
    laneFigures.lateWrite = "";
    const res = await rawCall(servers.parts.url, execPath, [exec("lane-late")]);
    assert.equal(res.trailers["grpc-status"], "0");
    assert.match(laneFigures.lateWrite, /not while a yielded one is on its way/);
    assert.equal(envelopes(res.body).length, 1 + 32 + 2, "started, the 32 lane writes, the yielded one and exit");
  });

  it("counts what the stream has not sent as backlog, and runs `sent` in order once it is sent", async () => {
    laneFigures.sent = [];
    const res = await rawCall(servers.parts.url, execPath, [exec("lane-backlog")]);
    assert.equal(res.trailers["grpc-status"], "0");
    // What the stream has not sent counts, until its write callbacks ran.
    assert.ok(laneFigures.backlogAfterWrites > 1024 * 1024, `backlog ${laneFigures.backlogAfterWrites}`);
    assert.equal(laneFigures.backlogWhenSent, 0);
    assert.deepEqual(laneFigures.sent, [...Array(32).keys()]);
    const messages = envelopes(res.body).map((m) => fromBinary(ExecResponseSchema, m));
    assert.deepEqual(
      messages.map((m) => m.event.case),
      ["started", ...Array(32).fill("stdout"), "exit"],
    );
    for (const [i, m] of messages.slice(1, 33).entries()) {
      assert.ok(Buffer.from(bytes(65_536, i)).equals(m.event.value as Uint8Array), `message ${i}`);
    }
  });

  it("sends nothing after the client cancelled, and still runs `sent`", async () => {
    laneFigures.cancelledSent = false;
    const session = http2Connect(servers.parts.url);
    try {
      const stream = grpcRequest(session, execPath);
      stream.end(envelope(exec("lane-cancel")));
      await new Promise((resolve) => stream.once("data", resolve));
      stream.close(http2Constants.NGHTTP2_CANCEL);
      const by = Date.now() + 5000;
      while (!laneFigures.cancelledSent && Date.now() < by) await new Promise((r) => setTimeout(r, 10));
      assert.ok(laneFigures.cancelledSent, "`sent` ran for a write after the cancel");
      assert.ok(!servers.parts.written.has(laneFigures.cancelledPayload), "nothing was written to the closed stream");
    } finally {
      session.close();
    }
  });
});

describe("request envelopes (lib/kit/request-messages.ts)", () => {
  it("joins a message cut into 1,024 reads once, when its last byte came", () => {
    const message = bytes(1 << 20);
    const wire = Buffer.concat([envelope(message), envelope(bytes(3))]);
    const splitter = new EnvelopeSplitter(0xffffffff);
    const concat = Buffer.concat;
    let joins = 0;
    Buffer.concat = ((...args: Parameters<typeof concat>) => {
      joins++;
      return concat(...args);
    }) as typeof concat;
    const out: Uint8Array[] = [];
    try {
      for (let at = 0; at < wire.length; at += 1024) {
        for (const e of splitter.split(wire.subarray(at, at + 1024))) out.push(e.data);
      }
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(joins, 1);
    assert.equal(out.length, 2);
    assert.ok(Buffer.from(message).equals(out[0]));
    assert.ok(Buffer.from(bytes(3)).equals(out[1]));
    assert.equal(splitter.leftover, 0);
  });
});

describe("request frames that are one bytes field (lib/kit/bytes-parts.ts)", () => {
  const parse = aloneBytesParser(AttachRequestSchema);

  it("reads an input frame of every length class as fromBinary does", () => {
    assert.ok(parse);
    for (const n of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const wire = input(bytes(n, n));
      assert.deepEqual(parse(wire), fromBinary(AttachRequestSchema, wire), `${n} bytes`);
    }
  });

  it("leaves every other encoding to fromBinary", () => {
    assert.ok(parse);
    const one = input(bytes(3));
    const others: Array<[string, Uint8Array]> = [
      [
        "a start frame",
        toBinary(
          AttachRequestSchema,
          create(AttachRequestSchema, { frame: { case: "start", value: { terminalId: "t" } } }),
        ),
      ],
      ["an ack", toBinary(AttachRequestSchema, create(AttachRequestSchema, { frame: { case: "ack", value: 7n } }))],
      ["an empty message", new Uint8Array(0)],
      ["two input fields", Buffer.concat([one, one])],
      ["a length past the end", one.subarray(0, one.length - 1)],
      ["a byte after the field", Buffer.concat([one, Buffer.from([0])])],
      ["a length that does not end", Buffer.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x01])],
    ];
    for (const [name, wire] of others) assert.equal(parse(wire), undefined, name);
    assert.equal(aloneBytesParser(ExecRequestSchema), undefined, "ExecRequest's bytes share the message");
  });

  it("frames a bytes field numbered 2^29 - 1 (the largest; its tag is past 2^31) and leaves reading it to fromBinary", () => {
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "parts_test.proto",
        package: "devex.test",
        syntax: "proto3",
        messageType: [
          {
            name: "Far",
            field: [{ name: "data", number: 2 ** 29 - 1, type: FieldDescriptorProto_Type.BYTES, oneofIndex: 0 }],
            oneofDecl: [{ name: "frame" }],
          },
        ],
      }),
      () => undefined,
    );
    const far = registry.getMessage("devex.test.Far") as DescMessage;
    const encode = partsEncoder(far, { writeMaxBytes: 1 << 20 }, () => new Error("too large"));
    for (const n of [0, 3, 5000]) {
      const message = create(far, { frame: { case: "data", value: bytes(n) } } as never);
      const wire = toBinary(far, message);
      assert.ok(Buffer.concat(encode?.(message as never) ?? []).equals(envelope(wire)), `${n} bytes framed`);
      assert.equal(aloneBytesParser(far)?.(wire), undefined, "a tag of 5 bytes goes to fromBinary");
    }
  });
});
