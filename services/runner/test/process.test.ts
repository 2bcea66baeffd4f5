import assert from "node:assert/strict";
import type { Client } from "@connectrpc/connect";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { isAlive } from "../../../lib/kit/pids.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { codeOf, connectClient, errorText, sleep, startTestRunner, type TestRunner, waitFor } from "./helpers.js";

async function run(
  procs: Client<typeof ProcessService>,
  req: Parameters<Client<typeof ProcessService>["exec"]>[0],
  signal?: AbortSignal,
) {
  let stdout = "";
  let stderr = "";
  let pid = 0;
  let exit: { exitCode: number; signal: string; timedOut: boolean } | undefined;
  for await (const r of procs.exec(req, { signal })) {
    if (r.event.case === "started") pid = r.event.value.pid;
    if (r.event.case === "stdout") stdout += Buffer.from(r.event.value).toString();
    if (r.event.case === "stderr") stderr += Buffer.from(r.event.value).toString();
    if (r.event.case === "exit") exit = r.event.value;
  }
  return { stdout, stderr, pid, exit };
}

describe("runner ProcessService", function () {
  this.timeout(30_000);
  let t: TestRunner;
  let procs: Client<typeof ProcessService>;

  before(async function () {
    requireProgram(this, "bash");
    t = await startTestRunner({ limits: { maxProcesses: 3, maxTerminals: 2, processOutputBytes: 1000 } });
    procs = connectClient(ProcessService, t.runner.url, t.token);
  });
  after(() => t?.close());

  it("runs argv and shell commands with cwd, env and stdin; streams stdout/stderr; reports exit codes", async () => {
    await t.runner.workspace; // workspace exists
    const a = await run(procs, { command: { argv: ["pwd"], cwd: "" } });
    assert.equal(a.stdout.trim(), t.workspace);
    const b = await run(procs, {
      command: { shell: "echo out-$FOO; echo err >&2; cat; exit 4", env: { FOO: "bar" } },
      stdin: new TextEncoder().encode("from-stdin\n"),
    });
    assert.equal(b.stdout, "out-bar\nfrom-stdin\n");
    assert.equal(b.stderr, "err\n");
    assert.deepEqual(b.exit, { $typeName: "devex.runner.v1.ProcessExit", exitCode: 4, signal: "", timedOut: false });
    const c = await run(procs, { command: { shell: "kill -9 $$" } });
    assert.equal(c.exit?.signal, "SIGKILL");
    const missing = await run(procs, { command: { argv: ["no-such-program-xyz"] } });
    assert.equal(missing.exit?.exitCode, 127, "a missing program ends like in bash (exec-codes.test.ts)");
    assert.equal(await codeOf(run(procs, { command: { argv: ["ls"], cwd: "../" } })), "InvalidArgument");
    const secrets = await run(procs, { command: { shell: "env | grep -c ^DEVEX_ || true" } });
    assert.equal(secrets.stdout.trim(), "0", "the runner's DEVEX_* configuration does not leak into commands");
  });

  it("a timeout kills the whole process group, grandchildren included", async () => {
    const started = Date.now();
    const r = await run(procs, {
      command: { shell: "bash -c 'sleep 300 & echo grandchild=$!; wait' & wait" },
      timeout: { seconds: 1n, nanos: 0 },
    });
    const grandchild = Number(/grandchild=(\d+)/.exec(r.stdout)?.[1]);
    assert.ok(grandchild > 0, r.stdout);
    assert.equal(r.exit?.timedOut, true);
    assert.ok(Date.now() - started < 5000);
    await waitFor(() => !isAlive(grandchild), 3000, "grandchild gone");
  });

  it("a timeout holds for a client slower than the command: output waits in the child, not on the wire", async () => {
    // `yes` writes far faster than this client reads. The client accepts gzip, which shrinks `yes`
    // a thousandfold: were Exec's output compressed, flow control would count compressed bytes and
    // the client would still be reading for many seconds after the timeout.
    const started = Date.now();
    let bytes = 0;
    let exit: { timedOut: boolean } | undefined;
    for await (const r of procs.exec({ command: { shell: "yes" }, timeout: { seconds: 2n, nanos: 0 } })) {
      if (r.event.case === "stdout") bytes += r.event.value.length;
      if (r.event.case === "exit") exit = r.event.value;
      await sleep(5);
    }
    const seconds = (Date.now() - started) / 1000;
    assert.equal(exit?.timedOut, true);
    assert.ok(seconds < 6, `the exit came after ${seconds} s (timeout 2 s), with ${bytes} bytes`);
  });

  it("a cancelled call kills the process group", async () => {
    const ac = new AbortController();
    let grandchild = 0;
    const p = (async () => {
      for await (const r of procs.exec({ command: { shell: "sleep 300 & echo gc=$!; wait" } }, { signal: ac.signal })) {
        if (r.event.case === "stdout") grandchild = Number(/gc=(\d+)/.exec(Buffer.from(r.event.value).toString())?.[1]);
      }
    })();
    await waitFor(() => grandchild > 0, 5000, "grandchild pid");
    ac.abort();
    await p.catch(() => {});
    await waitFor(() => !isAlive(grandchild), 3000, "grandchild gone after cancel");
  });

  it("runs background processes with bounded output, offsets, tail mode and kill", async () => {
    const { process: p } = await procs.startProcess({
      command: { shell: "for i in $(seq 1 500); do echo line-$i; done; sleep 300" },
    });
    await waitFor(
      async () =>
        (await procs.readProcessOutput({ processId: p!.processId, tail: true, maxBytes: 20 })).data.length > 0,
    );
    await sleep(200);
    const first = await procs.readProcessOutput({ processId: p!.processId, offset: 0n });
    assert.ok(first.droppedBytes > 0n, "the 1000-byte buffer dropped the oldest output");
    assert.equal(first.offset, first.droppedBytes);
    assert.ok(first.data.length <= 1000);
    const tail = await procs.readProcessOutput({ processId: p!.processId, tail: true, maxBytes: 9 });
    assert.equal(Buffer.from(tail.data).toString(), "line-500\n");
    const next = await procs.readProcessOutput({ processId: p!.processId, offset: tail.nextOffset });
    assert.equal(next.data.length, 0);
    const list = await procs.listProcesses({});
    assert.ok(list.processes.some((x) => x.processId === p!.processId && x.running));
    await procs.killProcess({ processId: p!.processId, signal: "SIGTERM" });
    await waitFor(async () => {
      const l = await procs.listProcesses({});
      return l.processes.find((x) => x.processId === p!.processId)?.exit?.signal === "SIGTERM";
    });
    assert.equal(await codeOf(procs.killProcess({ processId: p!.processId, signal: "SIGNOPE" })), "InvalidArgument");
  });

  it("refuses beyond the concurrent command and terminal limits with ResourceExhausted naming the limit", async () => {
    const started = await Promise.all([1, 2, 3].map(() => procs.startProcess({ command: { argv: ["sleep", "30"] } })));
    const err = await errorText(procs.startProcess({ command: { argv: ["true"] } }));
    assert.match(err, /resource_exhausted|ResourceExhausted/i);
    assert.match(err, /limit is 3 concurrent commands/);
    for (const s of started) await procs.killProcess({ processId: s.process!.processId, signal: "SIGKILL" });
    const terms = connectClient(TerminalService, t.runner.url, t.token);
    await terms.createTerminal({ command: ["sleep", "30"] });
    await terms.createTerminal({ command: ["sleep", "30"] });
    const terr = await errorText(terms.createTerminal({ command: ["sleep", "30"] }));
    assert.match(terr, /limit is 2 running terminals/);
  });
});
