/**
 * The request body's message reader (lib/kit/request-messages.ts) keeps an async generator's
 * contract, which connect's handler and the interceptors rely on: messages in order however the
 * body is cut, `check` before the body is opened, one read at a time, the body closed when the
 * reader stops early or a message fails (and not when the body itself ended or failed), and done
 * after that. Byte-level agreement with connect's handler is in grpc-parts-handler.test.ts.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { create, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Serialization } from "@connectrpc/connect/protocol";
import { compressionGzip } from "@connectrpc/connect-node";
import { type AttachRequest, AttachRequestSchema } from "../../gen/devex/runner/v1/terminal_pb.js";
import { requestMessages } from "./request-messages.js";

const serialization: Serialization<Message> = {
  parse: (data) => fromBinary(AttachRequestSchema, data),
  serialize: (m) => toBinary(AttachRequestSchema, m as AttachRequest),
};

function envelope(message: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + message.byteLength);
  out[0] = flags;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

const input = (text: string) =>
  toBinary(AttachRequestSchema, create(AttachRequestSchema, { frame: { case: "input", value: Buffer.from(text) } }));

/** A body that gives `chunks` (each after a turn), then ends, or fails with `error`; it counts its closes. */
function body(chunks: Uint8Array[], error?: Error) {
  const state = { opened: 0, closed: 0, reads: 0 };
  const iterable: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      state.opened++;
      let i = 0;
      return {
        async next() {
          state.reads++;
          await new Promise((r) => setImmediate(r));
          if (i < chunks.length) return { value: chunks[i++], done: false };
          if (error) throw error;
          return { value: undefined, done: true };
        },
        async return() {
          state.closed++;
          return { value: undefined, done: true };
        },
      };
    },
  };
  return { iterable, state };
}

const reader = (b: AsyncIterable<Uint8Array>, check = () => {}, readMaxBytes = 1 << 20) =>
  requestMessages(b, check, readMaxBytes, compressionGzip, serialization);

const text = (m: Message) => Buffer.from((m as AttachRequest).frame.value as Uint8Array).toString();

async function all(it: AsyncIterator<Message>): Promise<string[]> {
  const out: string[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) out.push(text(r.value));
  return out;
}

describe("request messages (lib/kit/request-messages.ts)", () => {
  it("gives every message in order however the body is cut, compressed ones included", async () => {
    const wire = Buffer.concat([
      envelope(input("a")),
      envelope(input("bb")),
      envelope(gzipSync(input("ccc")), 1),
      envelope(input("x".repeat(5000))),
    ]);
    for (const cut of [1, 3, 7, 64, wire.length]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < wire.length; at += cut) chunks.push(wire.subarray(at, at + cut));
      const b = body(chunks);
      assert.deepEqual(await all(reader(b.iterable)), ["a", "bb", "ccc", "x".repeat(5000)], `cut every ${cut}`);
      assert.equal(b.state.closed, 0, "a body that ended is not closed");
    }
  });

  it("runs check before opening the body, and fails the first read with its error", async () => {
    const b = body([envelope(input("a"))]);
    const it = reader(b.iterable, () => {
      throw new ConnectError("deadline too long", Code.InvalidArgument);
    });
    await assert.rejects(it.next(), /deadline too long/);
    assert.equal(b.state.opened, 0);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  it("answers reads made together one after another, in order", async () => {
    const b = body([Buffer.concat([envelope(input("1")), envelope(input("2"))]), envelope(input("3"))]);
    const it = reader(b.iterable);
    const results = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
    assert.deepEqual(
      results.map((r) => (r.done ? "done" : text(r.value))),
      ["1", "2", "3", "done"],
    );
  });

  it("answers a read made after return() with done, even while a message is still arriving", async () => {
    const wire = Buffer.concat([envelope(input("1")), envelope(input("2"))]);
    // The first chunk completes no envelope, so the first read is still waiting for more.
    const b = body([wire.subarray(0, 3), wire.subarray(3)]);
    const it = reader(b.iterable);
    const first = it.next();
    const returned = it.return!();
    await new Promise((r) => setImmediate(r));
    const after = it.next();
    assert.equal(text((await first).value as Message), "1");
    assert.deepEqual(await returned, { done: true, value: undefined });
    assert.deepEqual(await after, { done: true, value: undefined }, "a read after return() is done");
    assert.equal(b.state.closed, 1);
  });

  it("closes the body when the reader stops early, once, then is done", async () => {
    const b = body([envelope(input("1")), envelope(input("2"))]);
    const it = reader(b.iterable);
    assert.equal(text((await it.next()).value as Message), "1");
    assert.deepEqual(await it.return!(), { done: true, value: undefined });
    await it.return!();
    assert.equal(b.state.closed, 1);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  it("rejects with what is thrown in, closing the body", async () => {
    const b = body([envelope(input("1")), envelope(input("2"))]);
    const it = reader(b.iterable);
    await it.next();
    await assert.rejects(it.throw!(new Error("handler gave up")), /handler gave up/);
    assert.equal(b.state.closed, 1);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  it("fails on a message that is not protobuf, closing the body", async () => {
    const b = body([envelope(input("1")), envelope(Buffer.from([0xff, 0xff, 0xff])), envelope(input("3"))]);
    const it = reader(b.iterable);
    await it.next();
    await assert.rejects(it.next());
    assert.equal(b.state.closed, 1);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  it("fails a message over readMaxBytes with ResourceExhausted, closing the body", async () => {
    const b = body([envelope(input("x".repeat(100)))]);
    const it = reader(b.iterable, () => {}, 50);
    await assert.rejects(
      it.next(),
      (e: ConnectError) => e.code === Code.ResourceExhausted && /readMaxBytes 50/.test(e.message),
    );
    assert.equal(b.state.closed, 1);
  });

  it("fails a body that ends inside an envelope with InvalidArgument, and a failing body with its error, closing neither", async () => {
    const cut = body([envelope(input("1")), envelope(input("22")).subarray(0, 4)]);
    const it = reader(cut.iterable);
    await it.next();
    await assert.rejects(
      it.next(),
      (e: ConnectError) => e.code === Code.InvalidArgument && /incomplete envelope/.test(e.message),
    );
    assert.equal(cut.state.closed, 0);
    assert.deepEqual(await it.next(), { done: true, value: undefined });

    const failing = body([envelope(input("1"))], new Error("stream reset"));
    const it2 = reader(failing.iterable);
    await it2.next();
    await assert.rejects(it2.next(), /stream reset/);
    assert.equal(failing.state.closed, 0);
    assert.deepEqual(await it2.next(), { done: true, value: undefined });
  });
});
