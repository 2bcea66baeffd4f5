/**
 * Status, idle detection with an injected clock against a real RunnerControlService (a Connect
 * server started here that records calls), and RunnerAdminService Flush and Drain.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { StatusService } from "../../../gen/devex/runner/v1/status_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import {
  type HeartbeatRequest,
  HeartbeatResponseSchema,
  type ReportIdleRequest,
  ReportIdleResponseSchema,
  RunnerAdminService,
  RunnerControlService,
} from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { createLogger } from "../../../lib/kit/log.js";
import { killGroup } from "../../../lib/kit/pids.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { bearerToken } from "../../../lib/kit/tokens.js";
import {
  codeOf,
  connectClient,
  REPL,
  sleep,
  startChildRunner,
  startTestRunner,
  type TestRunner,
  waitFor,
} from "./helpers.js";

describe("runner status, idle reports and admin", function () {
  this.timeout(30_000);
  let core: RunningServer;
  const heartbeats: HeartbeatRequest[] = [];
  const idleReports: ReportIdleRequest[] = [];
  const authHeaders: string[] = [];
  let now = Date.now();
  let t: TestRunner;

  before(async () => {
    core = await startServer({
      name: "fake-core",
      port: 0,
      log: createLogger("fake-core", { level: "silent" }),
      routes(router) {
        router.service(RunnerControlService, {
          async heartbeat(req, ctx) {
            authHeaders.push(bearerToken(ctx.requestHeader.get("authorization")) ?? "");
            heartbeats.push(req);
            // Core renews a credential past half its life: here the one the runner starts with.
            const renew = authHeaders.at(-1) === "control-secret";
            return create(HeartbeatResponseSchema, {
              interval: durationFromMs(60_000),
              controlToken: renew ? "control-renewed" : "",
            });
          },
          async reportIdle(req, ctx) {
            authHeaders.push(bearerToken(ctx.requestHeader.get("authorization")) ?? "");
            idleReports.push(req);
            return create(ReportIdleResponseSchema, { stopping: true });
          },
        });
      },
    });
    t = await startTestRunner({
      config: {
        idleTimeoutMs: 60_000,
        core: { url: core.url, runnerId: "runner-7", controlToken: "control-secret", heartbeatIntervalMs: 60_000 },
      },
      options: { clock: () => now, idleCheckIntervalMs: 20 },
    });
  });
  after(async () => {
    await t?.close();
    await core?.close();
  });

  it("a runner that cannot listen leaves nothing behind: its git relay closes with the start", async () => {
    const listeners = () => process.getActiveResourcesInfo().filter((x) => x === "TCPServerWrap").length;
    const before = listeners();
    await assert.rejects(
      startTestRunner({
        config: {
          socketPath: "/dev/null/runner.sock", // its folder cannot be made
          core: { url: core.url, runnerId: "runner-8", controlToken: "control-secret", heartbeatIntervalMs: 60_000 },
        },
      }),
      /EEXIST|ENOTDIR/,
    );
    await sleep(50); // a closed handle leaves the list on the next turn of the loop
    assert.equal(listeners(), before, String(process.getActiveResourcesInfo()));
  });

  it("sends a heartbeat with the control token at start", async () => {
    await waitFor(() => heartbeats.length > 0, 5000, "heartbeat");
    assert.equal(heartbeats[0].replId, REPL);
    assert.equal(heartbeats[0].runnerId, "runner-7");
    assert.equal(authHeaders[0], "control-secret");
  });

  it("calls core with the credential a heartbeat renewed", async () => {
    await waitFor(() => heartbeats.length > 0, 5000, "heartbeat");
    // One client serves every call to core (heartbeats, idle reports, audit, git credentials).
    await t.runner.idleMonitor!.heartbeat();
    assert.deepEqual(authHeaders.slice(0, 2), ["control-secret", "control-renewed"]);
  });

  it("reports idle once after the idle timeout; GetStatus is not activity, other RPCs are", async () => {
    const status = connectClient(StatusService, t.runner.url, t.token);
    const files = connectClient(FileService, t.runner.url, t.token);
    await files.listFiles({ path: "" });
    const s1 = await status.getStatus({});
    now += 59_000;
    await status.getStatus({});
    await sleep(100);
    assert.equal(idleReports.length, 0, "not idle before the timeout");
    now += 2_000;
    await waitFor(() => idleReports.length === 1, 5000, "idle report");
    assert.ok(Number(idleReports[0].idleFor!.seconds) >= 60);
    await sleep(100);
    assert.equal(idleReports.length, 1, "reported once per idle period");
    await files.listFiles({ path: "" }); // activity resets the clock
    const s2 = await status.getStatus({});
    assert.ok(s2.lastActivityTime!.seconds > s1.lastActivityTime!.seconds);
    now += 61_000;
    await waitFor(() => idleReports.length === 2, 5000, "second idle report");
  });

  it("a running command keeps the runner busy", async () => {
    const procs = connectClient(ProcessService, t.runner.url, t.token);
    const { process: p } = await procs.startProcess({ command: { argv: ["sleep", "30"] } });
    const before = idleReports.length;
    now += 120_000;
    await sleep(150);
    assert.equal(idleReports.length, before);
    const s = await connectClient(StatusService, t.runner.url, t.token).getStatus({});
    assert.equal(s.processes, 1);
    await procs.killProcess({ processId: p!.processId, signal: "SIGKILL" });
  });

  it("Flush counts files and bytes; Drain ends terminals and processes and refuses new work", async () => {
    const adminToken = t.signer.mint({ aud: "runner-admin", sub: "core", repl: REPL, scope: [] }, 600);
    const admin: Client<typeof RunnerAdminService> = connectClient(RunnerAdminService, t.runner.url, adminToken);
    await writeFile(path.join(t.workspace, "one.txt"), "12345");
    await writeFile(path.join(t.workspace, "two.txt"), "123");
    const flushed = await admin.flush({});
    assert.equal(flushed.files, 2n);
    assert.equal(flushed.bytes, 8n);
    const terms = connectClient(TerminalService, t.runner.url, t.token);
    const procs = connectClient(ProcessService, t.runner.url, t.token);
    const { terminal } = await terms.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    await procs.startProcess({ command: { shell: "trap '' TERM; sleep 30" } });
    const t0 = Date.now();
    const drained = await admin.drain({ reason: "test", gracePeriod: durationFromMs(300) });
    assert.equal(drained.terminalsClosed, 1);
    assert.equal(drained.processesKilled, 1);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(await codeOf(terms.createTerminal({})), "Unavailable");
    assert.equal(
      await codeOf(connectClient(FileService, t.runner.url, t.token).listFiles({ path: "" })),
      "Unavailable",
    );
    assert.ok(terminal);
  });
});

describe("runner process lifetime", function () {
  this.timeout(30_000);

  it("SIGTERM to the runner ends its terminals' and commands' process groups", async () => {
    const r = await startChildRunner();
    const procs = connectClient(ProcessService, r.url, r.token);
    const terms = connectClient(TerminalService, r.url, r.token);
    const { process: p } = await procs.startProcess({ command: { shell: "sleep 300 & wait" } });
    const { terminal } = await terms.createTerminal({ command: ["bash", "-c", "sleep 300 & wait"] });
    const alive = (pid: number) => killGroup(pid, 0);
    assert.ok(alive(p!.pid) && alive(terminal!.pid));
    await r.close();
    await waitFor(() => !alive(p!.pid) && !alive(terminal!.pid), 5000, "process groups gone");
  });
});
