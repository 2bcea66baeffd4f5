import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { connect } from "node:http2";
import path from "node:path";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { ReadFileRequestSchema } from "../../../gen/devex/runner/v1/file_pb.js";
import { StreamOutputRequestSchema } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { killGroup } from "../../../lib/kit/pids.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type GrpcClient, grpcClient, startTestRunner, type TestRunner, unary, waitFor } from "./helpers.js";

/**
 * One gRPC call over plain node:http2 offering gzip, reading until the first message has arrived
 * and the stream ends or 300 ms pass: the response's grpc-encoding and each message's compressed
 * flag and length.
 */
async function rawGrpc<S extends DescMessage>(
  url: string,
  token: string,
  method: string,
  req: { schema: S; message: MessageInitShape<S> },
): Promise<{ encoding: string | undefined; messages: Array<{ compressed: boolean; bytes: number }> }> {
  const session = connect(url);
  try {
    const body = toBinary(req.schema, create(req.schema, req.message));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": `/${method}`,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-accept-encoding": "gzip",
      authorization: `Bearer ${token}`,
    });
    stream.end(frame);
    const headers = await new Promise<Record<string, unknown>>((resolve) => stream.once("response", resolve));
    let buf = Buffer.alloc(0);
    const messages: Array<{ compressed: boolean; bytes: number }> = [];
    await new Promise<void>((resolve) => {
      let settling = false;
      stream.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
          const n = buf.readUInt32BE(1);
          messages.push({ compressed: buf[0] === 1, bytes: n });
          buf = buf.subarray(5 + n);
        }
        if (messages.length > 0 && !settling) {
          settling = true;
          setTimeout(resolve, 300);
        }
      });
      stream.on("close", () => resolve());
    });
    stream.close();
    return { encoding: headers["grpc-encoding"] as string | undefined, messages };
  } finally {
    session.destroy();
  }
}

/** A bidi Attach over grpc-js that collects output as text. */
function attach(client: GrpcClient, terminalId: string, replay = false) {
  const call = client.attach();
  const frames: Array<Record<string, unknown>> = [];
  let text = "";
  let exit: { exitCode: number; signal: string } | undefined;
  call.on("data", (f: Record<string, unknown>) => {
    frames.push(f);
    if (f.frame === "output") text += (f.output as Buffer).toString("utf8");
    if (f.frame === "exit") exit = f.exit as typeof exit;
  });
  const ended = new Promise<void>((resolve) => {
    call.on("end", resolve);
    call.on("error", () => resolve());
  });
  call.write({ start: { terminalId, replay } });
  return {
    call,
    frames,
    get text() {
      return text;
    },
    get exit() {
      return exit;
    },
    ended,
    type: (s: string) => call.write({ input: Buffer.from(s) }),
  };
}

describe("runner terminals over grpc-js (bidi Attach)", function () {
  this.timeout(30_000);
  let t: TestRunner;
  let client: GrpcClient;

  before(async function () {
    requireProgram(this, "bash");
    t = await startTestRunner();
    client = grpcClient(t.runner.url, "TerminalService", t.token);
  });
  after(async () => {
    client?.close();
    await t?.close();
  });

  it("runs real bash in a real PTY: input, output and resize (stty size answers)", async () => {
    const res = await unary<{ terminal: { terminalId: string; pid: number } }>(client, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
      size: { cols: 80, rows: 24 },
    });
    const id = res.terminal.terminalId;
    const a = attach(client, id);
    await waitFor(() => a.frames.length > 0, 5000, "attached frame");
    assert.equal(a.frames[0].frame, "attached");
    a.type("echo hello-$((6*7))\n");
    await waitFor(() => a.text.includes("hello-42"), 5000, "echo output");
    a.type("stty size\n");
    await waitFor(() => a.text.includes("24 80"), 5000, "initial size");
    a.call.write({ resize: { cols: 132, rows: 43 } });
    a.type("stty size\n");
    await waitFor(() => a.text.includes("43 132"), 5000, "resized size");
    a.type("exit 7\n");
    await a.ended;
    assert.deepEqual(a.exit, { exitCode: 7, signal: "" });
    assert.equal(a.frames.at(-1)!.frame, "exit");
  });

  it("sends terminal output uncompressed to a gRPC client that offers gzip (other services still compress)", async () => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "-c", "head -c 100000 /dev/zero | tr '\\0' y; sleep 0.3"],
    });
    const id = res.terminal.terminalId;
    await waitFor(
      async () => {
        const sb = await unary<{ data: Buffer }>(client, "readScrollback", { terminalId: id, maxBytes: 200_000 });
        return sb.data.length >= 100_000;
      },
      5000,
      "the output in the scrollback",
    );
    await writeFile(path.join(t.workspace, "big.txt"), "z".repeat(100_000));
    // Plain node:http2, so the response's grpc-encoding header and each message's compressed flag
    // are visible (grpc-js hides both).
    const terminal = await rawGrpc(t.runner.url, t.token, "devex.runner.v1.TerminalService/StreamOutput", {
      schema: StreamOutputRequestSchema,
      message: { terminalId: id, replay: true },
    });
    assert.equal(terminal.encoding, undefined);
    assert.ok(terminal.messages.length > 0);
    assert.ok(terminal.messages.every((m) => !m.compressed));
    // The replay is the mirror's screen and scrollback: 1,024 of the 1,250 full lines.
    assert.ok(terminal.messages.reduce((n, m) => n + m.bytes, 0) > 80_000);
    const file = await rawGrpc(t.runner.url, t.token, "devex.runner.v1.FileService/ReadFile", {
      schema: ReadFileRequestSchema,
      message: { path: "big.txt" },
    });
    assert.equal(file.encoding, "gzip");
    assert.ok(file.messages[0].compressed);
  });

  it("loses no output when the shell exits right after printing (node-pty #72), 4 terminals at once", async () => {
    const size = 300_000;
    const runs = [0, 1, 2, 3].map(async () => {
      const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
        command: ["bash", "-c", `sleep 0.3; head -c ${size} /dev/zero | tr '\\0' x; printf END; exit 3`],
      });
      const a = attach(client, res.terminal.terminalId, true);
      await a.ended;
      const xs = a.text.split("").filter((c) => c === "x").length;
      assert.equal(xs, size);
      assert.ok(a.text.endsWith("END"), "final bytes arrive");
      assert.deepEqual(a.exit, { exitCode: 3, signal: "" });
    });
    await Promise.all(runs);
  });

  it("a terminal whose program cannot run ends like in bash: 127 and its message on the screen", async () => {
    for (const [command, code, message] of [
      [["no-such-program-xyz"], 127, "bash: no-such-program-xyz: command not found"],
      [["./no/such/file"], 127, "bash: ./no/such/file: No such file or directory"],
    ] as const) {
      const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", { command });
      const a = attach(client, res.terminal.terminalId, true);
      await a.ended;
      assert.match(a.text, new RegExp(message.replace(/[.]/g, "\\.")));
      assert.deepEqual(a.exit, { exitCode: code, signal: "" });
    }
  });

  it("ends Attach with InvalidArgument when a frame breaks the rules", async () => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
    });
    const a = attach(client, res.terminal.terminalId);
    const error = new Promise<{ code: number }>((resolve) => a.call.on("error", resolve));
    await waitFor(() => a.frames.length > 0);
    a.call.write({ resize: { cols: 0, rows: 5000 } });
    assert.equal((await error).code, 3);
    await unary(client, "closeTerminal", { terminalId: res.terminal.terminalId });
  });

  it("gives a terminal's first client the output written before it attached, even after the exit; later clients only live output", async () => {
    const early = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "-c", "echo early-bird; sleep 1; echo later"],
    });
    await new Promise((r) => setTimeout(r, 400)); // "early-bird" is written before anyone attaches
    const a = attach(client, early.terminal.terminalId);
    await a.ended;
    assert.match(a.text, /early-bird\r\nlater/);
    assert.equal(Number((a.frames[0].attached as { replayBytes: string }).replayBytes), 0, "live output, not a replay");

    const done = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "-c", "echo gone; exit 3"],
    });
    await new Promise((r) => setTimeout(r, 600)); // exited before anyone attached
    const b = attach(client, done.terminal.terminalId);
    await b.ended;
    assert.match(b.text, /gone/);
    assert.deepEqual(b.exit, { exitCode: 3, signal: "" });

    const quiet = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "-c", "echo once; sleep 30"],
    });
    await new Promise((r) => setTimeout(r, 400));
    const first = attach(client, quiet.terminal.terminalId);
    await waitFor(() => first.text.includes("once"), 5000, "first client's early output");
    first.call.cancel();
    const second = attach(client, quiet.terminal.terminalId);
    await waitFor(() => second.frames.length > 0, 5000, "attached frame");
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!second.text.includes("once"), "a later client without replay gets live output only");
    second.call.cancel();
    await unary(client, "closeTerminal", { terminalId: quiet.terminal.terminalId });
  });

  it("reattach after a client drop replays the recent output", async () => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
    });
    const id = res.terminal.terminalId;
    const a = attach(client, id);
    a.type("echo before-drop-$((1+1))\n");
    await waitFor(() => a.text.includes("before-drop-2"), 5000, "output");
    a.call.cancel();
    await a.ended;
    await waitFor(async () => {
      const list = await unary<{ terminals: Array<{ terminalId: string; attachedClients: number }> }>(
        client,
        "listTerminals",
        {},
      );
      return list.terminals.find((x) => x.terminalId === id)?.attachedClients === 0;
    });
    const b = attach(client, id, true);
    await waitFor(() => b.text.includes("before-drop-2"), 5000, "replayed output");
    const attached = b.frames[0] as { attached: { replayBytes: string } };
    assert.ok(Number(attached.attached.replayBytes) > 0);
    b.type("echo after-$((2+2))\n");
    await waitFor(() => b.text.includes("after-4"), 5000, "live output after reattach");
    await unary(client, "closeTerminal", { terminalId: id });
    await b.ended;
  });

  it("browser form: StreamOutput + SendInput + ResizeTerminal + ReadScrollback", async () => {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", {
      command: ["bash", "--norc", "--noprofile"],
    });
    const id = res.terminal.terminalId;
    const stream = client.streamOutput({ terminalId: id, replay: true });
    let text = "";
    stream.on("data", (f: { frame: string; output?: Buffer }) => {
      if (f.frame === "output") text += f.output!.toString();
    });
    stream.on("error", () => {});
    await unary(client, "resizeTerminal", { terminalId: id, size: { cols: 100, rows: 30 } });
    await unary(client, "sendInput", { terminalId: id, data: Buffer.from("stty size\n") });
    await waitFor(() => text.includes("30 100"), 5000, "stty size via StreamOutput");
    const sb = await unary<{ data: Buffer; totalBytes: string }>(client, "readScrollback", {
      terminalId: id,
      maxBytes: 0,
    });
    assert.ok(sb.data.toString().includes("30 100"));
    assert.ok(Number(sb.totalBytes) >= sb.data.length);
    stream.cancel();
    await unary(client, "closeTerminal", { terminalId: id });
    await assert.rejects(unary(client, "readScrollback", { terminalId: id }), /NOT_FOUND|does not exist/);
  });

  it("close kills the terminal's whole process group", async () => {
    const res = await unary<{ terminal: { terminalId: string; pid: number } }>(client, "createTerminal", {
      command: ["bash", "-c", "sleep 1000 & sleep 1000 & wait"],
    });
    const pid = res.terminal.pid;
    await waitFor(() => killGroup(pid, 0));
    await unary(client, "closeTerminal", { terminalId: res.terminal.terminalId });
    await waitFor(() => !killGroup(pid, 0), 3000, "process group gone");
  });
});

describe("runner terminal flow control (gRPC Attach)", function () {
  this.timeout(30_000);
  let t: TestRunner;
  let client: GrpcClient;

  before(async function () {
    requireProgram(this, "yes");
    t = await startTestRunner();
    client = grpcClient(t.runner.url, "TerminalService", t.token);
  });
  after(async () => {
    client?.close();
    await t?.close();
  });

  /** A terminal running `yes`, attached, and the output bytes received so far. */
  async function attachToYes() {
    const res = await unary<{ terminal: { terminalId: string } }>(client, "createTerminal", { command: ["yes"] });
    const id = res.terminal.terminalId;
    const a = attach(client, id);
    let bytes = 0;
    a.call.on("data", (f: { frame: string; output?: Buffer }) => {
      if (f.frame === "output") bytes += f.output!.length;
    });
    return { id, session: t.runner.terminals.get(id), a, received: () => bytes };
  }

  it("pauses the PTY when unacknowledged output passes the high watermark and resumes on ack", async () => {
    const { id, session, a, received } = await attachToYes();
    a.call.write({ ack: "0" }); // this client acks: flow control by unacknowledged bytes
    await waitFor(() => session.isPaused, 15_000, "pause above the high watermark");
    const atPause = received();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(received() - atPause < 300_000, `output kept flowing while paused (${received() - atPause} bytes)`);
    assert.ok(session.totalBytes < 2_000_000, `the PTY kept producing (${session.totalBytes} bytes)`);
    a.call.write({ ack: String(received()) });
    await waitFor(() => !session.isPaused || received() > atPause + 100_000, 5000, "resume after ack");
    a.call.cancel();
    await unary(client, "closeTerminal", { terminalId: id });
  });

  it("pauses the PTY while a client that sends no acks stops reading, and resumes when it reads again", async () => {
    const { id, session, a, received } = await attachToYes();
    await waitFor(() => received() > 0, 5000, "output");
    a.call.pause(); // stops reading: the HTTP/2 window fills, then what the runner holds unsent
    await waitFor(() => session.isPaused, 15_000, "pause while the client reads nothing");
    const atPause = session.totalBytes;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(session.isPaused, "stays paused");
    assert.ok(session.totalBytes - atPause < 300_000, `the PTY kept producing (${session.totalBytes - atPause} bytes)`);
    const before = received();
    a.call.resume();
    await waitFor(() => received() > before + 2_000_000, 15_000, "output flows again");
    a.call.cancel();
    await unary(client, "closeTerminal", { terminalId: id });
  });
});
