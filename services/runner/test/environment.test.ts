/**
 * The repl's environment variables in a runner, from a stand-in core's WatchEnvironment: a process
 * started before core's first message waits for it (a client's first terminal comes right after
 * StartRepl); each later message reaches the next process, not one already running; with core
 * unreachable, processes start at once, without them.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import {
  HeartbeatResponseSchema,
  RunnerControlService,
  WatchEnvironmentResponseSchema,
} from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { createLogger } from "../../../lib/kit/log.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { connectClient, startTestRunner, type TestRunner } from "./helpers.js";

const log = createLogger("runner", { level: "silent" });

async function printenv(t: TestRunner, name: string): Promise<string | undefined> {
  const processes = connectClient(ProcessService, t.runner.url, t.token);
  let out = "";
  let code = -1;
  for await (const m of processes.exec({ command: { argv: ["printenv", name] } })) {
    if (m.event.case === "stdout") out += Buffer.from(m.event.value).toString();
    if (m.event.case === "exit") code = m.event.value.exitCode;
  }
  return code === 0 ? out.trim() : undefined;
}

describe("repl environment variables in a runner", () => {
  let core: RunningServer;
  let t: TestRunner;
  /** What the stand-in core sends next, and when. */
  const pushes: Array<(v: Record<string, string>) => void> = [];
  /** Lets the stand-in core send its first message (held until a process waits for it). */
  let releaseFirst: () => void = () => {};
  const firstReleased = new Promise<void>((resolve) => {
    releaseFirst = resolve;
  });

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
          async *watchEnvironment(_req, ctx) {
            // The first message comes late: a process started meanwhile must wait for it.
            await firstReleased;
            yield create(WatchEnvironmentResponseSchema, { variables: { GREETING: "hello there" } });
            while (!ctx.signal.aborted) {
              const next = await new Promise<Record<string, string>>((resolve) => {
                pushes.push(resolve);
                ctx.signal.addEventListener("abort", () => resolve({}));
              });
              if (!ctx.signal.aborted) yield create(WatchEnvironmentResponseSchema, { variables: next });
            }
          },
        });
      },
    });
    t = await startTestRunner({
      config: { core: { url: core.url, runnerId: "runner-e", controlToken: "control", heartbeatIntervalMs: 60_000 } },
    });
  });
  after(async () => {
    await t?.close();
    await core?.close();
  });

  it("a process started before core's first message waits for it", async () => {
    const started = Date.now();
    const seen = printenv(t, "GREETING");
    // Still waiting well after the process was asked for: only the message lets it start.
    await new Promise((r) => setTimeout(r, 300));
    releaseFirst();
    assert.equal(await seen, "hello there");
    assert.ok(Date.now() - started < 4000, "it waited for the message, not the timeout");
  });

  it("a change reaches the next process", async () => {
    while (!pushes.length) await new Promise((r) => setTimeout(r, 10));
    pushes.shift()!({ GREETING: "changed", OTHER: "x" });
    let seen: string | undefined;
    for (let i = 0; i < 50 && seen !== "changed"; i++) {
      seen = await printenv(t, "GREETING");
      if (seen !== "changed") await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen, "changed");
    assert.equal(await printenv(t, "OTHER"), "x");
  });

  it("with core unreachable, processes start at once without them", async () => {
    const lone = await startTestRunner({
      config: {
        core: { url: "http://127.0.0.1:9", runnerId: "runner-f", controlToken: "c", heartbeatIntervalMs: 60_000 },
      },
    });
    try {
      const started = Date.now();
      assert.equal(await printenv(lone, "GREETING"), undefined);
      assert.ok(Date.now() - started < 3000, `waited ${Date.now() - started} ms`);
    } finally {
      await lone.close();
    }
  });
});
