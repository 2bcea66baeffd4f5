import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startTestRunner, type TestRunner } from "./helpers.js";

/** Outcomes of settled calls: how many succeeded, and the distinct errors of the rest. */
async function tally(calls: Array<Promise<unknown>>) {
  const settled = await Promise.allSettled(calls);
  const errors = new Map<string, number>();
  let ok = 0;
  for (const s of settled) {
    if (s.status === "fulfilled") ok++;
    else {
      const e = ConnectError.from(s.reason);
      const key = `${Code[e.code]}: ${e.rawMessage}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
  }
  return { ok, errors: [...errors.entries()] };
}

describe("runner limits under concurrency", function () {
  this.timeout(60_000);
  let t: TestRunner;
  // One HTTP/2 connection: 1,000 calls arrive together instead of queueing behind sockets.
  const client = <S extends typeof TerminalService | typeof ProcessService>(service: S) =>
    createClient(
      service,
      createConnectTransport({
        baseUrl: t.runner.url,
        httpVersion: "2",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${t.token}`);
            return next(req);
          },
        ],
      }),
    );

  before(async function () {
    requireProgram(this, "sleep");
    t = await startTestRunner(); // the default limits: 16 terminals, 32 commands
  });
  after(() => t?.close());

  it("1,000 concurrent CreateTerminal make exactly the limit of 16; the rest are ResourceExhausted", async () => {
    const terms = client(TerminalService);
    const r = await tally(Array.from({ length: 1000 }, () => terms.createTerminal({ command: ["sleep", "60"] })));
    assert.equal(r.ok, 16);
    assert.deepEqual(r.errors, [
      [
        "ResourceExhausted: too many terminals: the limit is 16 running terminals per repl (DEVEX_RUNNER_MAX_TERMINALS); close one first",
        984,
      ],
    ]);
    assert.equal(t.runner.terminals.running, 16);
  });

  it("1,000 concurrent StartProcess make exactly the limit of 32; the rest are ResourceExhausted", async () => {
    const procs = client(ProcessService);
    const r = await tally(
      Array.from({ length: 1000 }, () => procs.startProcess({ command: { argv: ["sleep", "60"] } })),
    );
    assert.equal(r.ok, 32);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0][1], 968);
    assert.match(r.errors[0][0], /^ResourceExhausted: too many commands running: the limit is 32 concurrent/);
    assert.equal(t.runner.processes.running, 32);
  });

  it("a creation that fails frees its slot", async () => {
    const procs = client(ProcessService);
    await t.runner.processes.killAll(0);
    const failed = await tally(
      // A missing cwd fails the start after its slot was reserved (a missing program now starts and exits 127).
      Array.from({ length: 100 }, () => procs.startProcess({ command: { argv: ["true"], cwd: "no-such-dir" } })),
    );
    assert.equal(failed.ok, 0);
    assert.equal(failed.errors.find(([e]) => e.startsWith("NotFound"))?.[1], 32);
    // Every slot is free again: the full limit can start.
    const r = await tally(Array.from({ length: 32 }, () => procs.startProcess({ command: { argv: ["sleep", "60"] } })));
    assert.equal(r.ok, 32);
  });
});
