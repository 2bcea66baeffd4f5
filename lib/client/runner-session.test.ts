import assert from "node:assert/strict";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ReplService } from "../../gen/devex/core/v1/repl_pb.js";
import { StatusService } from "../../gen/devex/runner/v1/status_pb.js";
import { RunnerRoute } from "../contracts/runner-access.js";
import { createRunnerClients } from "./clients.js";
import { coreClientsFor, nodeTransport } from "./node.js";
import { type RecordingServer, startRecordingServer } from "./recording-server.js";
import { REFRESH_MARGIN_MS, RunnerSession, startRunnerSession } from "./runner-session.js";

/** What the test core's StartRepl answers next. */
interface Plan {
  runnerUrl: string;
  /** Token lifetime; undefined: no expire time. */
  ttlMs: number | undefined;
  fail: boolean;
  withoutRunner: boolean;
  previewUrlTemplate: string;
}

describe("RunnerSession: StartRepl, runner clients on the current token, refresh", function () {
  this.timeout(30_000);
  let a: RecordingServer;
  let b: RecordingServer;
  let starts = 0;
  const plan: Plan = { runnerUrl: "", ttlMs: 600_000, fail: false, withoutRunner: false, previewUrlTemplate: "" };

  const runnerClients = (url: string, token: () => string) => createRunnerClients(nodeTransport(url, { token }));
  const core = () => coreClientsFor(a.server.url, { token: "api-token" });
  const start = () => startRunnerSession({ core: core(), replId: "r1", runnerClients });

  before(async () => {
    a = await startRecordingServer((router, record) => {
      router.service(ReplService, {
        startRepl(req, ctx) {
          record(ctx);
          if (plan.fail) throw new ConnectError("core is down", Code.Unavailable);
          starts++;
          const runner = {
            url: plan.runnerUrl,
            token: `runner-${starts}`,
            expireTime: plan.ttlMs === undefined ? undefined : timestampFromMs(Date.now() + plan.ttlMs),
            websocketPath: "/ws/terminals/",
            previewUrlTemplate: plan.previewUrlTemplate,
            previewToken: `preview-${starts}`,
          };
          return { repl: { replId: req.replId }, runner: plan.withoutRunner ? undefined : runner };
        },
      });
      router.service(StatusService, {
        getStatus(_req, ctx) {
          record(ctx);
          return { replId: "on-a" };
        },
      });
    });
    b = await startRecordingServer((router, record) => {
      router.service(StatusService, {
        getStatus(_req, ctx) {
          record(ctx);
          return { replId: "on-b" };
        },
      });
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });
  beforeEach(() => {
    Object.assign(plan, { runnerUrl: a.server.url, ttlMs: 600_000, fail: false, withoutRunner: false });
    plan.previewUrlTemplate = "";
    a.calls.length = 0;
    b.calls.length = 0;
  });

  it("starts the repl as the user, then calls the runner with the runner token", async () => {
    const { repl, session } = await start();
    assert.equal(repl?.replId, "r1");
    assert.equal((await session.clients.status.getStatus({})).replId, "on-a");
    assert.deepEqual(
      a.calls.map((c) => [c.method, c.authorization]),
      [
        ["StartRepl", "Bearer api-token"],
        ["GetStatus", `Bearer ${session.token}`],
      ],
    );
  });

  it("a refresh calls StartRepl again; the same clients then send the new token", async () => {
    const { session } = await start();
    const clients = session.clients;
    const first = session.token;
    await session.refresh();
    assert.notEqual(session.token, first);
    assert.equal(session.clients, clients);
    await clients.status.getStatus({});
    assert.equal(a.calls.at(-1)?.authorization, `Bearer ${session.token}`);
  });

  it("concurrent refreshes share one StartRepl", async () => {
    const { session } = await start();
    a.calls.length = 0;
    await Promise.all([session.refresh(), session.refresh(), session.refresh()]);
    assert.equal(a.calls.filter((c) => c.method === "StartRepl").length, 1);
  });

  it("a refresh that moves the repl to another runner gives clients of that runner", async () => {
    const { session } = await start();
    assert.equal((await session.clients.status.getStatus({})).replId, "on-a");
    plan.runnerUrl = b.server.url;
    await session.refresh();
    assert.equal((await session.clients.status.getStatus({})).replId, "on-b");
    assert.equal(b.calls[0].authorization, `Bearer ${session.token}`);
  });

  it("needs a refresh within a minute of the expiry, or when the expiry is unknown", async () => {
    const { session } = await start();
    const expires = session.expiresAt();
    assert.ok(expires);
    const at = (now: number) =>
      new RunnerSession({
        core: core(),
        replId: "r1",
        access: session.access,
        runnerClients,
        now: () => now,
      }).needsRefresh();
    assert.equal(at(expires - REFRESH_MARGIN_MS - 1000), false);
    assert.equal(at(expires - REFRESH_MARGIN_MS + 1000), true);
    plan.ttlMs = undefined;
    const { session: noExpiry } = await start();
    assert.equal(noExpiry.needsRefresh(), true);
  });

  it("keepFresh refreshes by timer before the token expires", async () => {
    plan.ttlMs = REFRESH_MARGIN_MS; // due now: the timer waits its minimum (5 s)
    const { session } = await start();
    const first = session.token;
    const failures: unknown[] = [];
    session.keepFresh((err) => failures.push(err));
    await waitFor(() => session.token !== first, 15_000);
    session.close();
    assert.deepEqual(failures, []);
  });

  it("keepFresh reports a timed refresh that failed", async () => {
    plan.ttlMs = REFRESH_MARGIN_MS;
    const { session } = await start();
    plan.fail = true;
    const failures: unknown[] = [];
    session.keepFresh((err) => failures.push(err));
    await waitFor(() => failures.length > 0, 15_000);
    session.close();
    assert.equal((failures[0] as ConnectError).code, Code.Unavailable);
  });

  it("a StartRepl without runner access is an error that says so", async () => {
    plan.withoutRunner = true;
    await assert.rejects(start(), (e: ConnectError) => {
      assert.equal(e.code, Code.Internal);
      assert.match(e.message, /repl r1 started without runner access/);
      return true;
    });
  });

  it("preview URLs carry the preview token, never the access token; terminal URLs come from the access", async () => {
    const { session } = await start();
    const base = a.server.url;
    assert.equal(
      session.previewUrl(3000),
      `${base}${RunnerRoute.preview}3000/?token=${encodeURIComponent(session.access.previewToken)}`,
    );
    assert.equal(session.previewUrl(3000, false), `${base}${RunnerRoute.preview}3000/`);
    assert.ok(!session.previewUrl(3000).includes(session.token));
    plan.previewUrlTemplate = "https://preview.example/r1/preview/{port}/";
    await session.refresh();
    assert.equal(session.previewUrl(8080, false), "https://preview.example/r1/preview/8080/");
    assert.equal(
      session.terminalUrl("t1", { replay: true, cols: 80, rows: 24 }),
      `${base.replace(/^http/, "ws")}/ws/terminals/t1?replay=1&cols=80&rows=24`,
    );
  });
});

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
