import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "../../gen/devex/core/v1/auth_pb.js";
import { StatusService } from "../../gen/devex/runner/v1/status_pb.js";
import { RunnerAdminService, RunnerControlService } from "../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { createCoreClients } from "./clients.js";
import { coreClientsFor, runnerAdminClientFor, runnerClientsFor, runnerControlClientFor } from "./node.js";
import { type RecordingServer, startRecordingServer } from "./recording-server.js";
import { webTransport } from "./web.js";

/** Core's, a runner's and the control services, answering as the caller the token names. */
function routes(...[router, record]: Parameters<Parameters<typeof startRecordingServer>[0]>) {
  router.service(AuthService, {
    getCurrentUser(_req, ctx) {
      record(ctx);
      const auth = ctx.requestHeader.get("authorization");
      if (!auth) throw new ConnectError("no token", Code.Unauthenticated);
      return { user: { userId: auth.replace(/^Bearer /, "") } };
    },
  });
  router.service(StatusService, {
    getStatus(_req, ctx) {
      record(ctx);
      return { replId: "r1" };
    },
  });
  router.service(RunnerAdminService, {
    drain(_req, ctx) {
      record(ctx);
      return { terminalsClosed: 2 };
    },
  });
  router.service(RunnerControlService, {
    heartbeat(_req, ctx) {
      record(ctx);
      return { unknownRunner: true };
    },
  });
}

describe("lib/client transports: bearer token, protocol, TCP or Unix socket", function () {
  this.timeout(20_000);
  let tcp: RecordingServer;
  let socketOnly: RecordingServer;
  before(async () => {
    tcp = await startRecordingServer(routes);
    socketOnly = await startRecordingServer(routes, { socket: true, tcp: false });
  });
  after(async () => {
    await tcp?.close();
    await socketOnly?.close();
  });
  beforeEach(() => {
    tcp.calls.length = 0;
    socketOnly.calls.length = 0;
  });

  it("node: Connect over HTTP/1.1 by default, gRPC over h2c when asked, each with the bearer token", async () => {
    const connect = coreClientsFor(tcp.server.url, { token: "alice" });
    const grpc = coreClientsFor(tcp.server.url, { token: "bob", protocol: "grpc" });
    assert.equal((await connect.auth.getCurrentUser({})).user?.userId, "alice");
    assert.equal((await grpc.auth.getCurrentUser({})).user?.userId, "bob");
    assert.deepEqual(
      tcp.calls.map((c) => [c.authorization, c.contentType]),
      [
        ["Bearer alice", "application/proto"],
        ["Bearer bob", "application/grpc+proto"],
      ],
    );
  });

  it("node: without a token no authorization header is sent", async () => {
    const anonymous = coreClientsFor(tcp.server.url);
    await assert.rejects(anonymous.auth.getCurrentUser({}), (e: ConnectError) => e.code === Code.Unauthenticated);
    assert.equal(tcp.calls[0].authorization, null);
  });

  it("node: a token function is read at every call, so a refreshed token needs no new client", async () => {
    let token = "t1";
    const runner = runnerClientsFor(tcp.server.url, { token: () => token });
    await runner.status.getStatus({});
    token = "t2";
    await runner.status.getStatus({});
    assert.deepEqual(
      tcp.calls.map((c) => c.authorization),
      ["Bearer t1", "Bearer t2"],
    );
  });

  it("node: runner-admin and runner-control clients reach a server listening only on a Unix socket", async () => {
    const { url, socketPath } = socketOnly.server;
    assert.ok(socketPath);
    for (const protocol of ["connect", "grpc"] as const) {
      const admin = runnerAdminClientFor(url, { token: `admin-${protocol}`, socketPath, protocol });
      const control = runnerControlClientFor(url, { token: `control-${protocol}`, socketPath, protocol });
      assert.equal((await admin.drain({ reason: "test" })).terminalsClosed, 2);
      assert.equal((await control.heartbeat({ replId: "r1", runnerId: "x" })).unknownRunner, true);
    }
    assert.deepEqual(
      socketOnly.calls.map((c) => [c.method, c.authorization]),
      [
        ["Drain", "Bearer admin-connect"],
        ["Heartbeat", "Bearer control-connect"],
        ["Drain", "Bearer admin-grpc"],
        ["Heartbeat", "Bearer control-grpc"],
      ],
    );
  });

  it("web: Connect-Web sends protobuf binary by default, JSON when asked, with the bearer token", async () => {
    const binary = createCoreClients(webTransport(tcp.server.url, { token: "carol" }));
    const json = createCoreClients(webTransport(tcp.server.url, { token: () => "dave", format: "json" }));
    assert.equal((await binary.auth.getCurrentUser({})).user?.userId, "carol");
    assert.equal((await json.auth.getCurrentUser({})).user?.userId, "dave");
    assert.deepEqual(
      tcp.calls.map((c) => [c.authorization, c.contentType]),
      [
        ["Bearer carol", "application/proto"],
        ["Bearer dave", "application/json"],
      ],
    );
  });

  it("web: an empty token sends no header (the session cookie authenticates instead)", async () => {
    const cookieOnly = createCoreClients(webTransport(tcp.server.url, { token: "" }));
    await assert.rejects(cookieOnly.auth.getCurrentUser({}), (e: ConnectError) => e.code === Code.Unauthenticated);
    assert.equal(tcp.calls[0].authorization, null);
  });
});
