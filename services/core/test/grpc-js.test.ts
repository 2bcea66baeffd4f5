/**
 * An independent client on the wire contract: grpc-js with proto-loader reading proto/ (no generated
 * code) calls core over h2c with an API token in the metadata.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { startTestCore, type TestCore } from "./harness.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));

type Callback<T> = (err: grpc.ServiceError | null, value: T) => void;
type Unary = (req: object, md: grpc.Metadata, cb: Callback<Record<string, unknown>>) => void;

describe("core over grpc-js (proto-loader on proto/)", () => {
  let t: TestCore;
  let client: grpc.Client & Record<string, Unary>;
  before(async () => {
    t = await startTestCore();
    const definition = protoLoader.loadSync("devex/core/v1/repl.proto", {
      includeDirs: [`${root}/proto`, `${root}/third_party/protovalidate`],
      enums: String,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      devex: { core: { v1: { ReplService: grpc.ServiceClientConstructor } } };
    };
    client = new pkg.devex.core.v1.ReplService(
      `127.0.0.1:${t.core.server.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & Record<string, Unary>;
  });
  after(async () => {
    client?.close();
    await t?.close();
  });

  const call = (method: string, req: object, token?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set("authorization", `Bearer ${token}`);
      client[method](req, md, (err, value) => (err ? reject(err) : resolve(value)));
    });
  const code = (c: grpc.status) => (e: grpc.ServiceError) => e.code === c;

  it("creates and reads a repl, with the contract's status codes", async () => {
    const alice = await t.token("alice");
    const { templates } = (await call("ListTemplates", {}, alice)) as { templates: Array<{ name: string }> };
    assert.deepEqual(
      templates.map((x) => x.name),
      ["node", "python", "vite"],
    );
    const { repl } = (await call("CreateRepl", { name: "grpc", template: "python" }, alice)) as {
      repl: { replId: string; status: string; owner: string };
    };
    assert.equal(repl.status, "REPL_STATUS_STOPPED");
    assert.equal(repl.owner, "alice");
    const got = (await call("GetRepl", { replId: repl.replId }, alice)) as { repl: { name: string } };
    assert.equal(got.repl.name, "grpc");

    await assert.rejects(call("GetRepl", { replId: repl.replId }), code(grpc.status.UNAUTHENTICATED));
    await assert.rejects(call("GetRepl", { replId: repl.replId }, await t.token("bob")), code(grpc.status.NOT_FOUND));
    await assert.rejects(call("CreateRepl", { name: "", template: "node" }, alice), code(grpc.status.INVALID_ARGUMENT));
    await call("CreateRepl", { name: "second", template: "node" }, alice);
    await assert.rejects(
      call("CreateRepl", { name: "third", template: "node" }, alice),
      (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED && /quota/.test(e.details),
    );
  });
});
