/**
 * gRPC to a repl's runner through core's one port (the embedded setup's proxy, h2-forward.ts), by
 * clients Devex was not built with: grpc-js with proto-loader reading proto/ (the repl named in the
 * devex-repl-id header), buf curl, Python grpcio running examples/python-grpc/attach.py (messages
 * compiled from proto/ by protoc), and the shared Connect clients over HTTP/2 with the /<replId>/
 * path prefix. Bidi Attach with input, resize and exit; a server stream cancelled by the client;
 * trailers with the runner's own errors; and refusals without a runner token or for a repl that
 * is not running.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import type { CoreClients } from "../../../lib/client/clients.js";
import { bufCurl } from "../../../lib/testing/buf-curl.js";
import { type GrpcClient, grpcClient, unary } from "../../../lib/testing/grpc-client.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { waitFor } from "../../../lib/testing/wait.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Embedded, startEmbedded } from "./embedded.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..", "..");

describe("gRPC to runners through core's port (embedded setup)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let core: CoreClients;
  let replId: string;
  let runnerToken: string;
  let apiToken: string;
  const clients: GrpcClient[] = [];

  const viaCore = (service: string, token = runnerToken, repl = replId) => {
    const client = grpcClient(e.core.url, service, token, { "devex-repl-id": repl });
    clients.push(client);
    return client;
  };

  before(async () => {
    e = await startEmbedded();
    apiToken = (await issueApiToken(e.state, "alice", "grpc")).secret;
    core = await e.login("alice");
    ({
      repl: { replId } = { replId: "" },
    } = await core.repls.createRepl({ name: "grpc", template: "node" }));
    const started = await core.repls.startRepl({ replId });
    runnerToken = started.runner!.token;
  });
  after(async () => {
    for (const c of clients) c.close();
    await e?.close();
  });

  it("carries a bidi Attach from grpc-js: input, output, resize (stty size), exit code", async () => {
    const terminals = viaCore("TerminalService");
    const { terminal } = await unary<{ terminal: { terminalId: string } }>(terminals, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
      size: { cols: 80, rows: 24 },
    });
    const call = terminals.attach();
    let text = "";
    let exit: { exitCode: number } | undefined;
    call.on("data", (f: Record<string, unknown>) => {
      if (f.frame === "output") text += (f.output as Buffer).toString();
      if (f.frame === "exit") exit = f.exit as typeof exit;
    });
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.write({ start: { terminalId: terminal.terminalId } });
    call.write({ input: Buffer.from("echo through-core-$((6*7)); stty size\n") });
    await waitFor(() => text.includes("through-core-42") && text.includes("24 80"), 10_000, "echo and size");
    call.write({ resize: { cols: 132, rows: 43 } });
    call.write({ input: Buffer.from("stty size\n") });
    await waitFor(() => text.includes("43 132"), 10_000, "the new size");
    call.write({ input: Buffer.from("exit 7\n") });
    assert.equal((await status).code, grpc.status.OK, "the grpc-status trailer came through");
    assert.deepEqual(exit, { exitCode: 7, signal: "" });
  });

  it("passes a client's cancel of a server stream on to the runner, whose stream count goes back", async () => {
    const terminals = viaCore("TerminalService");
    const status = viaCore("StatusService");
    const streams = async () => (await unary<{ streams: number }>(status, "getStatus", {})).streams;
    const before = await streams();
    const { terminal } = await unary<{ terminal: { terminalId: string } }>(terminals, "createTerminal", {
      command: ["bash", "-c", "while true; do echo tick; sleep 0.05; done"],
    });
    const call = terminals.streamOutput({ terminalId: terminal.terminalId });
    let received = 0;
    call.on("data", () => received++);
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    await waitFor(() => received > 3, 10_000, "streamed output");
    assert.equal(await streams(), before + 1, "the runner counts the stream");
    call.cancel();
    assert.equal((await ended).code, grpc.status.CANCELLED);
    await waitFor(async () => (await streams()) === before, 10_000, "the runner's stream count back where it was");
    await unary(terminals, "closeTerminal", { terminalId: terminal.terminalId });
  });

  it("keeps the runner's own error status and message in the trailers", async () => {
    const files = viaCore("FileService");
    const err = await unary(files, "readFile", { path: "no/such/file" }).catch((x: grpc.ServiceError) => x);
    assert.equal((err as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    // grpc-js decodes grpc-message with decodeURI, which leaves the runner's %2F as it is.
    assert.match(decodeURIComponent((err as grpc.ServiceError).details), /"no\/such\/file" does not exist/);
  });

  it("refuses a call without a runner token, with another repl's token, and for a repl that is not running", async () => {
    const code = (p: Promise<unknown>) => p.then(() => grpc.status.OK).catch((x: grpc.ServiceError) => x.code);
    assert.equal(await code(unary(viaCore("FileService", ""), "listFiles", {})), grpc.status.UNAUTHENTICATED);
    const bob = await e.login("bob");
    const { repl } = await bob.repls.createRepl({ name: "bobs", template: "node" });
    const bobs = await bob.repls.startRepl({ replId: repl!.replId });
    // Bob's runner token names his repl: alice's runner refuses it.
    assert.equal(
      await code(unary(viaCore("FileService", bobs.runner!.token), "listFiles", {})),
      grpc.status.PERMISSION_DENIED,
    );
    await bob.repls.stopRepl({ replId: repl!.replId });
    assert.equal(
      await code(unary(viaCore("FileService", bobs.runner!.token, repl!.replId), "listFiles", {})),
      grpc.status.UNAVAILABLE,
      "core answers 503 for a repl that is not running",
    );
  });

  it("serves the shared Connect clients over HTTP/2 with the /<replId>/ path prefix (gRPC protocol)", async () => {
    const transport = createGrpcTransport({
      baseUrl: `${e.core.url}/${replId}`,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${runnerToken}`);
          return next(req);
        },
      ],
    });
    const files = createClient(FileService, transport);
    await files.writeFile({ path: "over-h2.txt", content: new TextEncoder().encode("prefix route") });
    const read = await files.readFile({ path: "over-h2.txt" });
    assert.equal(new TextDecoder().decode(read.content), "prefix route");
  });

  it("routes by the header over HTTP/1.1 too (Connect JSON), and leaves core's own calls alone without it", async () => {
    const call = (headers: Record<string, string>) =>
      fetch(`${e.core.url}/devex.runner.v1.FileService/StatFile`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${runnerToken}`, ...headers },
        body: JSON.stringify({ path: "over-h2.txt" }),
      });
    const routed = await call({ "devex-repl-id": replId });
    assert.equal(routed.status, 200);
    assert.equal((await routed.json()).info.size, String("prefix route".length));
    assert.equal((await call({})).status, 404, "without the header core has no such service");
    assert.equal((await call({ "devex-repl-id": "../etc" })).status, 404, "a header that is no repl id routes nowhere");
  });

  it("answers buf curl (gRPC, HTTP/2 prior knowledge) with the repl in a header", async () => {
    const answer = (await bufCurl(
      `${e.core.url}/devex.runner.v1.FileService/StatFile`,
      { path: "over-h2.txt" },
      { "devex-repl-id": replId, authorization: `Bearer ${runnerToken}` },
    )) as { info?: { size?: string } };
    assert.equal(answer.info?.size, String("prefix route".length));
  });

  it("runs the documented Python example (grpcio, messages compiled from proto/) through core", async function () {
    const python = requireProgram(this, "/usr/bin/python3", (p) => {
      try {
        execFileSync(p, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" });
      } catch {
        return "python3-grpcio and python3-protobuf are needed (apt-get install python3-grpcio python3-protobuf)";
      }
    });
    const protoc = requireProgram(this, "protoc");
    const out = await mkdtemp(join(tmpdir(), "devex-python-grpc-"));
    try {
      await run(
        protoc,
        [
          "-I",
          join(root, "proto"),
          "-I",
          join(root, "third_party/protovalidate"),
          `--python_out=${out}`,
          join(root, "proto/devex/runner/v1/terminal.proto"),
          join(root, "third_party/protovalidate/buf/validate/validate.proto"),
        ],
        { cwd: root },
      );
      const result = await run(
        python,
        [join(root, "examples/python-grpc/attach.py"), e.core.url, replId, "echo py-$((6*7))", "stty size", "(exit 3)"],
        { env: { PYTHONPATH: out, DEVEX_TOKEN: apiToken, PATH: process.env.PATH }, timeout: 60_000 },
      ).catch((x: { code: number; stdout: string; stderr: string }) => x);
      const { stdout, stderr } = result as { stdout: string; stderr: string };
      assert.equal((result as { code?: number }).code, 3, `exit code of the terminal: ${stderr}`);
      assert.match(stdout, /py-42/);
      assert.match(stdout, /40 120/, "the resize reached the terminal");
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
