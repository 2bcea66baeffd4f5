import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReplService } from "../../gen/devex/core/v1/repl_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { bufCurl } from "../testing/buf-curl.js";
import { requireProgram } from "../testing/programs.js";
import { authInterceptor, createPrincipalKey, principalOf } from "./auth.js";
import { notFound, resourceExhausted } from "./errors.js";
import { ServingStatus } from "./health.js";
import { createLogger } from "./log.js";
import { type RunningServer, startServer } from "./server.js";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** A tiny service on the kit, with bearer auth, to exercise the shared behaviour end to end. */
async function startTestServer(logLines: string[] = []): Promise<RunningServer> {
  const user = createPrincipalKey<string>("user");
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  return startServer({
    name: "kit-test",
    port: 0,
    log: createLogger("kit-test", { destination: sink }),
    interceptors: [
      authInterceptor(user, (headers) => {
        if (headers.get("authorization") !== "Bearer good") throw notFound("no such token");
        return "alice";
      }),
    ],
    routes(router) {
      router.service(ReplService, {
        getRepl(req, ctx) {
          if (req.replId === "quota") throw resourceExhausted("repl quota of 2 reached: delete a repl first");
          if (req.replId === "boom") throw new Error("redis: connection refused at 10.0.0.5:6379");
          return { repl: { replId: req.replId, owner: principalOf(ctx, user) } };
        },
      });
    },
  });
}

describe("server kit: one port for HTTP/1.1 and h2c", () => {
  let server: RunningServer;
  const logLines: string[] = [];
  before(async () => {
    server = await startTestServer(logLines);
  });
  after(async () => {
    await server.close();
  });

  it("answers a Connect JSON POST over HTTP/1.1 and grpc-js (proto-loader on proto/) over h2c on the same port", async () => {
    const res = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "" }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "SERVING" });

    const definition = protoLoader.loadSync("grpc/health/v1/health.proto", {
      includeDirs: [join(root, "proto")],
      enums: String,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service: "" }, (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r))),
      );
      assert.equal(reply.status, "SERVING");
      const unknown = await new Promise<grpc.ServiceError>((resolve) =>
        client.Check({ service: "nope" }, (err: grpc.ServiceError) => resolve(err)),
      );
      assert.equal(unknown.code, grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it("serves connect-node clients over both HTTP versions and maps domain errors to Connect codes", async () => {
    for (const transport of [
      createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
      createGrpcTransport({ baseUrl: server.url }),
    ]) {
      const repls = createClient(ReplService, transport);
      const headers = { authorization: "Bearer good" };
      const { repl } = await repls.getRepl({ replId: "abc" }, { headers });
      assert.equal(repl?.owner, "alice");
      await assert.rejects(repls.getRepl({ replId: "abc" }), (e: ConnectError) => e.code === Code.NotFound);
      await assert.rejects(
        repls.getRepl({ replId: "quota" }, { headers }),
        (e: ConnectError) => e.code === Code.ResourceExhausted && e.rawMessage.includes("quota of 2"),
      );
      await assert.rejects(
        repls.getRepl({ replId: "Not A Valid Id!" }, { headers }),
        (e: ConnectError) => e.code === Code.InvalidArgument && e.rawMessage.includes("repl_id"),
      );
      await assert.rejects(repls.getRepl({ replId: "boom" }, { headers }), (e: ConnectError) => {
        assert.equal(e.code, Code.Internal);
        assert.doesNotMatch(e.rawMessage, /redis|10\.0\.0\.5/);
        return true;
      });
    }
    assert.ok(
      logLines.some((l) => l.includes("10.0.0.5")),
      "the backend error is logged for operators",
    );
  });

  it("refuses unauthenticated calls before validating the request", async () => {
    const repls = createClient(ReplService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    await assert.rejects(repls.getRepl({ replId: "Not A Valid Id!" }), (e: ConnectError) => e.code === Code.NotFound);
  });

  it("streams health changes with Watch, and serves /healthz and /metrics", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    server.health.set("devex.core.v1.ReplService", ServingStatus.SERVING);
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    for await (const res of health.watch({ service: "devex.core.v1.ReplService" }, { signal: abort.signal })) {
      seen.push(res.status);
      if (seen.length === 1) server.health.set("devex.core.v1.ReplService", ServingStatus.NOT_SERVING);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    abort.abort();
    server.health.set("devex.core.v1.ReplService", ServingStatus.SERVING);

    const healthz = await fetch(`${server.url}/healthz`);
    assert.equal(healthz.status, 200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /devex_rpc_requests_total\{.*rpc_method="GetRepl".*code="not_found"/);
    assert.match(metrics, /process_resident_memory_bytes/);
    assert.equal((await fetch(`${server.url}/nothing-here`)).status, 404);
  });

  it("counts each error under its own code in /metrics: a handler's DomainError, an unexpected error, an auth refusal", async () => {
    const authed = createClient(
      ReplService,
      createConnectTransport({
        baseUrl: server.url,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", "Bearer good");
            return next(req);
          },
        ],
      }),
    );
    const anonymous = createClient(ReplService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const before = await (await fetch(`${server.url}/metrics`)).text();
    await assert.rejects(authed.getRepl({ replId: "quota" }), (e: ConnectError) => e.code === Code.ResourceExhausted);
    await assert.rejects(authed.getRepl({ replId: "boom" }), (e: ConnectError) => e.code === Code.Internal);
    await assert.rejects(anonymous.getRepl({ replId: "r1" }), (e: ConnectError) => e.code === Code.NotFound);
    const after = await (await fetch(`${server.url}/metrics`)).text();
    const count = (text: string, code: string) =>
      Number(
        new RegExp(`devex_rpc_requests_total\\{[^}]*rpc_method="GetRepl"[^}]*code="${code}"[^}]*\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    for (const code of ["resource_exhausted", "internal", "not_found"])
      assert.equal(count(after, code) - count(before, code), 1, `one call counted as ${code}`);
    assert.equal(count(after, "unknown"), count(before, "unknown"), "nothing counted as unknown");
  });

  it("answers buf curl over gRPC with HTTP/2 prior knowledge", async () => {
    assert.deepEqual(await bufCurl(`${server.url}/grpc.health.v1.Health/Check`, {}), { status: "SERVING" });
  });

  it("answers Python grpcio (Debian python3-grpcio) over h2c", async function () {
    const python = requireProgram(this, "/usr/bin/python3", (p) => {
      try {
        execFileSync(p, ["-c", "import grpc"], { stdio: "ignore" });
      } catch {
        return "python3-grpcio is not installed (apt-get install python3-grpcio)";
      }
    });
    const script = [
      "import grpc, sys",
      `ch = grpc.insecure_channel("127.0.0.1:${server.port}")`,
      "check = ch.unary_unary('/grpc.health.v1.Health/Check', request_serializer=lambda b: b, response_deserializer=lambda b: b)",
      "sys.stdout.write(check(b'', timeout=10).hex())",
    ].join("\n");
    const { stdout } = await run(python, ["-c", script]);
    assert.equal(stdout, "0801", "HealthCheckResponse{status: SERVING} on the wire");
  });

  it("answers 404 to WebSocket upgrades that no handler takes", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/ws/none`, {
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": "x",
        },
      });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 404);
  });

  it("drops connections that stay silent instead of keeping them open", async () => {
    const quiet = await startServer({
      name: "quiet",
      port: 0,
      log: createLogger("quiet", { level: "silent" }),
      routes() {},
      sniffTimeoutMs: 200,
    });
    try {
      const { connect } = await import("node:net");
      const socket = connect(quiet.port, "127.0.0.1");
      const started = Date.now();
      await new Promise<void>((resolve) => socket.once("close", () => resolve()));
      const waited = Date.now() - started;
      assert.ok(waited >= 150 && waited < 5000, `closed after ${waited} ms`);
    } finally {
      await quiet.close();
    }
  });

  it("closes promptly with open h2 sessions and marks health NOT_SERVING", async () => {
    const other = await startTestServer();
    const health = createClient(Health, createGrpcTransport({ baseUrl: other.url }));
    await health.check(create((await import("../../gen/grpc/health/v1/health_pb.js")).HealthCheckRequestSchema, {}));
    const started = Date.now();
    await other.close();
    assert.ok(Date.now() - started < 2000, "close does not wait for idle h2 sessions");
    assert.equal(other.health.get(""), ServingStatus.NOT_SERVING);
  });
});
