/**
 * The runner's audit events (src/audit/): which calls are recorded with what, and how the reporter
 * batches and coalesces them for core's ReportAudit. Core's side and the whole path are
 * services/core/test/audit.e2e.test.ts.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import {
  HeartbeatResponseSchema,
  type ReportAuditRequest,
  ReportAuditResponseSchema,
  RunnerControlService,
} from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../lib/client/clients.js";
import { createLogger } from "../../../lib/kit/log.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { audited, detailsOf, programOf } from "../src/audit/audited.js";
import { type AuditEntry, AuditReporter } from "../src/audit/reporter.js";
import { codeOf, connectClient, startTestRunner, type TestRunner } from "./helpers.js";

const log = createLogger("runner", { level: "silent" });
const file = "devex.runner.v1.FileService/";

function fakeCore(fail = false) {
  const sent: ReportAuditRequest[] = [];
  return {
    sent,
    client: {
      async reportAudit(req: Parameters<RunnerControlClient["reportAudit"]>[0]) {
        if (fail) throw new Error("core unreachable");
        sent.push(req as ReportAuditRequest);
        return { recorded: req.events?.length ?? 0 } as never;
      },
    },
  };
}

const write = (path: string, over: Partial<AuditEntry> = {}): AuditEntry => ({
  time: Date.now(),
  userId: "ann",
  tokenId: "tok1",
  clientAddress: "127.0.0.1",
  rpc: `${file}WriteFile`,
  outcome: "ok",
  message: "",
  details: { path },
  ...over,
});

describe("runner audit events", () => {
  it("records terminals and commands whoever made them, file changes only with an API token", () => {
    assert.ok(audited("devex.runner.v1.TerminalService/CreateTerminal", "session"));
    assert.ok(audited("devex.runner.v1.ProcessService/Exec", undefined));
    assert.ok(audited(`${file}WriteFile`, "tok1")?.fileChange);
    assert.ok(audited(`${file}MoveFile`, "tok1"));
    assert.equal(audited(`${file}WriteFile`, "session"), undefined, "the browser IDE's saves");
    assert.equal(audited(`${file}WriteFile`, undefined), undefined);
    assert.equal(audited(`${file}ReadFile`, "tok1"), undefined, "reads");
    assert.equal(audited(`${file}WatchFiles`, "tok1"), undefined);
    assert.equal(audited("devex.runner.v1.TerminalService/SendInput", "tok1"), undefined, "keystrokes");
  });

  it("names a command by its program, never its arguments or command line", () => {
    assert.equal(programOf({ argv: ["/usr/bin/curl", "-H", "Authorization: Bearer s3cret"] }), "curl");
    assert.equal(programOf({ argv: [], shell: "TOKEN=s3cret make deploy" }), "bash -c");
    const exec = audited("devex.runner.v1.ProcessService/Exec", "tok1")!;
    const details = detailsOf(exec, { command: { argv: ["sh", "-c", "echo s3cret"], env: { K: "s3cret" } } }, {});
    assert.deepEqual(details, { program: "sh" });
    const w = audited(`${file}WriteFile`, "tok1")!;
    assert.deepEqual(detailsOf(w, { path: "a.txt", content: new Uint8Array([1]) }, {}), { path: "a.txt" });
    const m = audited(`${file}MoveFile`, "tok1")!;
    assert.deepEqual(detailsOf(m, { source: "a", destination: "b" }, {}), { path: "a", destination: "b" });
  });

  it("records streamed uploads by the path in their header (their first message), never downloads", () => {
    for (const rpc of ["UploadFile", "UploadArchive"]) {
      const u = audited(`${file}${rpc}`, "tok1")!;
      assert.ok(u.fileChange, rpc);
      const first = { part: { case: "header", value: { path: "up/big.bin", overwrite: true } } };
      assert.deepEqual(detailsOf(u, first, {}), { path: "up/big.bin" });
    }
    assert.equal(audited(`${file}DownloadFile`, "tok1"), undefined);
    assert.equal(audited(`${file}DownloadArchive`, "tok1"), undefined);
  });

  it("coalesces repeated writes of a path, and folds a flood of paths into one event", async () => {
    const core = fakeCore();
    const r = new AuditReporter({ client: core.client, replId: "r1", runnerId: "run-1", log });
    r.add({ ...write(""), rpc: "devex.runner.v1.ProcessService/Exec", details: { program: "sh" } });
    for (let i = 0; i < 5; i++) r.add(write("same.txt"), true);
    r.add(write("same.txt", { tokenId: "tok2" }), true);
    for (let i = 0; i < 10_000; i++) r.add(write(`f${i}.txt`), true);
    await r.flush();
    const events = core.sent.flatMap((s) => s.events);
    assert.ok(core.sent.every((s) => s.events.length <= 200 && s.replId === "r1" && s.runnerId === "run-1"));
    assert.equal(events[0].details.program, "sh");
    assert.deepEqual(events[1].details, { path: "same.txt", count: "5" });
    assert.equal(events[2].tokenId, "tok2");
    const more = events.filter((e) => e.details.path === "(more)");
    assert.equal(more.length, 1);
    assert.equal(events.length, 1 + 100 + 1, "100 distinct paths per interval, then one event for the rest");
    assert.equal(Number(more[0].details.count), 10_000 - 98);
    // A new interval: the same path is a new event.
    r.add(write("same.txt"), true);
    await r.flush();
    assert.deepEqual(
      core.sent.at(-1)?.events.map((e) => e.details),
      [{ path: "same.txt" }],
    );
  });

  it("keeps events while core is unreachable, bounded, and sends them later", async () => {
    const down = fakeCore(true);
    const r = new AuditReporter({ client: down.client, replId: "r1", runnerId: "run-1", log });
    for (let i = 0; i < 3000; i++) r.add({ ...write(""), rpc: "devex.runner.v1.ProcessService/Exec", details: {} });
    await r.flush();
    const up = fakeCore();
    (r as unknown as { d: { client: unknown } }).d.client = up.client;
    await r.flush();
    assert.equal(up.sent.flatMap((s) => s.events).length, 2000, "at most 2000 wait");
  });

  it("a file change dropped while the queue was full does not swallow that path's later changes", async () => {
    const gates: Array<() => void> = [];
    const started: Array<() => void> = [];
    const calls = [0, 1].map((i) => new Promise<void>((r) => (started[i] = r)));
    const sent: ReportAuditRequest[] = [];
    let call = 0;
    const client = {
      async reportAudit(req: Parameters<RunnerControlClient["reportAudit"]>[0]) {
        const n = call++;
        if (n < 2) {
          started[n]();
          await new Promise<void>((r) => (gates[n] = r));
        }
        sent.push(req as ReportAuditRequest);
        return {} as never;
      },
    };
    const r = new AuditReporter({ client, replId: "r1", runnerId: "run-1", log });
    for (let i = 0; i < 2000; i++) r.add({ ...write(""), rpc: "devex.runner.v1.ProcessService/Exec", details: {} });
    const flushing = r.flush();
    await calls[0];
    r.add(write("late.txt"), true); // the queue is full: dropped
    gates[0]();
    await calls[1]; // the first batch went out: there is room again
    r.add(write("late.txt"), true);
    gates[1]();
    await flushing;
    await r.flush();
    const late = sent.flatMap((s) => s.events).filter((e) => e.details.path === "late.txt");
    assert.deepEqual(
      late.map((e) => e.details),
      [{ path: "late.txt" }],
      "the change made once there was room",
    );
  });

  it("drops a batch core refuses outright, and goes on with the rest", async () => {
    let calls = 0;
    const sent: number[] = [];
    const client = {
      async reportAudit(req: Parameters<RunnerControlClient["reportAudit"]>[0]) {
        if (calls++ === 0) throw new ConnectError("repl r1 not found", Code.NotFound);
        sent.push(req.events?.length ?? 0);
        return {} as never;
      },
    };
    const r = new AuditReporter({ client, replId: "r1", runnerId: "run-1", log });
    for (let i = 0; i < 250; i++) r.add({ ...write(""), rpc: "devex.runner.v1.ProcessService/Exec", details: {} });
    await r.flush();
    assert.deepEqual(sent, [50]);
  });
});

describe("runner audit events through a runner", () => {
  let core: RunningServer;
  const reports: ReportAuditRequest[] = [];
  let t: TestRunner;
  before(async () => {
    core = await startServer({
      name: "fake-core",
      port: 0,
      log,
      routes(router) {
        router.service(RunnerControlService, {
          async heartbeat() {
            return create(HeartbeatResponseSchema, { interval: durationFromMs(60_000) });
          },
          async reportAudit(req) {
            reports.push(req);
            return create(ReportAuditResponseSchema, { recorded: req.events.length });
          },
        });
      },
    });
    t = await startTestRunner({
      config: { core: { url: core.url, runnerId: "runner-a", controlToken: "control", heartbeatIntervalMs: 60_000 } },
    });
  });
  after(async () => {
    await t?.close();
    await core?.close();
  });

  it("records calls the token's scopes refuse, with who was refused", async () => {
    const readOnly = t.mint({ scope: ["files:read"], tid: "tokReadOnly1" });
    const files = connectClient(FileService, t.runner.url, readOnly);
    await files.listFiles({ path: "" });
    assert.equal(await codeOf(files.writeFile({ path: "x.txt", content: new Uint8Array([1]) })), "PermissionDenied");
    const processes = connectClient(ProcessService, t.runner.url, readOnly);
    const exec = (async () => {
      for await (const _ of processes.exec({ command: { argv: ["true"] } }));
    })();
    assert.equal(await codeOf(exec), "PermissionDenied");
    // Close sends what was recorded (the server first, then the reporter).
    await t.runner.close();
    const events = reports.flatMap((r) => r.events);
    const write = events.find((e) => e.rpc === `${file}WriteFile`);
    assert.ok(write, `a WriteFile event among ${events.map((e) => e.rpc).join(", ")}`);
    assert.equal(write.outcome, "permission_denied");
    assert.match(write.message, /files/);
    assert.equal(write.tokenId, "tokReadOnly1");
    assert.equal(write.userId, "user-1");
    assert.deepEqual(write.details, { path: "x.txt" });
    const refusedExec = events.find((e) => e.rpc === "devex.runner.v1.ProcessService/Exec");
    assert.equal(refusedExec?.outcome, "permission_denied");
    assert.ok(!events.some((e) => e.rpc.endsWith("/ListFiles")), "reads are not recorded");
  });
});
