import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import type { Client } from "@connectrpc/connect";
import WebSocket from "ws";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import {
  connectClient,
  openTerminalSocket,
  startTestRunner,
  type TestRunner,
  upgradeStatus,
  waitFor,
} from "./helpers.js";

describe("runner terminals over the WebSocket bridge", function () {
  this.timeout(30_000);
  let t: TestRunner;
  let terms: Client<typeof TerminalService>;

  before(async function () {
    requireProgram(this, "bash");
    t = await startTestRunner();
    terms = connectClient(TerminalService, t.runner.url, t.token);
  });
  after(() => t?.close());

  it("does terminal I/O and resize with binary and protobuf-JSON frames", async () => {
    const { terminal } = await terms.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    const c = openTerminalSocket(t.runner.url, terminal!.terminalId, t.token, "?cols=90&rows=20");
    await c.opened;
    assert.equal(c.ws.protocol, "devex.terminal.v1");
    await waitFor(() => c.state.control.length > 0, 5000, "attached frame");
    assert.ok("attached" in c.state.control[0]);
    c.ws.send(Buffer.from("stty size\n"));
    await waitFor(() => c.state.text.includes("20 90"), 5000, "size from query");
    c.ws.send(JSON.stringify({ resize: { cols: 120, rows: 40 } }));
    c.ws.send(Buffer.from("stty size; echo ws-$((3*3))\n"));
    await waitFor(() => c.state.text.includes("40 120") && c.state.text.includes("ws-9"), 5000, "resize");
    c.ws.send(JSON.stringify({ ack: String(c.state.text.length) }));
    c.ws.send(Buffer.from("exit 5\n"));
    const { code } = await c.closed;
    assert.equal(code, 1000);
    assert.deepEqual(c.state.control.at(-1), { exit: { exitCode: 5 } });
  });

  it("replays the scrollback on reattach (?replay=1) after a client drop", async () => {
    const { terminal } = await terms.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    const id = terminal!.terminalId;
    const a = openTerminalSocket(t.runner.url, id, t.token);
    await a.opened;
    a.ws.send(Buffer.from("echo remember-$((5*5))\n"));
    await waitFor(() => a.state.text.includes("remember-25"), 5000, "output");
    a.ws.terminate();
    await a.closed;
    const b = openTerminalSocket(t.runner.url, id, t.token, "?replay=1");
    await waitFor(() => b.state.text.includes("remember-25"), 5000, "replay");
    const attached = b.state.control[0] as { attached: { replayBytes: string } };
    assert.ok(Number(attached.attached.replayBytes) > 0);
    b.ws.close();
    await terms.closeTerminal({ terminalId: id });
  });

  it("pauses the PTY while a client stops reading, and resumes when it reads again", async function () {
    requireProgram(this, "yes");
    const { terminal } = await terms.createTerminal({ command: ["yes"] });
    const id = terminal!.terminalId;
    const session = t.runner.terminals.get(id);
    const c = openTerminalSocket(t.runner.url, id, t.token);
    await c.opened;
    await waitFor(() => c.state.text.length > 0, 5000, "output");
    c.ws.pause(); // stops reading the socket: the kernel's buffers fill, then what the runner holds unsent
    await waitFor(() => session.isPaused, 15_000, "pause while the client reads nothing");
    const atPause = session.totalBytes;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(session.isPaused, "stays paused");
    assert.ok(session.totalBytes - atPause < 300_000, `the PTY kept producing (${session.totalBytes - atPause} bytes)`);
    const before = c.state.text.length;
    c.ws.resume();
    await waitFor(() => c.state.text.length > before + 2_000_000, 15_000, "output flows again");
    c.ws.terminate();
    await terms.closeTerminal({ terminalId: id });
  });

  /** `yes` with two WebSocket clients: `other`, a normal one, and `quiet`, which can half-close. */
  async function yesWithTwoClients() {
    const { terminal } = await terms.createTerminal({ command: ["yes"] });
    const id = terminal!.terminalId;
    const other = openTerminalSocket(t.runner.url, id, t.token);
    await other.opened;
    const quiet = await halfClosingClient(t.runner.url, `/ws/terminals/${id}?token=${t.token}`);
    const session = t.runner.terminals.get(id);
    /** Waits for `bytes` more output at the normal client, then checks that the quiet one is still attached. */
    const otherGets = async (bytes: number, what: string) => {
      const before = other.state.text.length;
      await waitFor(() => other.state.text.length > before + bytes, 15_000, what);
      assert.ok(!quiet.closed(), "the quiet client's connection is still open (the test's premise)");
      assert.equal(session.attachedClients, 2, "the quiet client is still attached, its socket closing");
    };
    const close = async () => {
      other.ws.terminate();
      quiet.destroy();
      await terms.closeTerminal({ terminalId: id });
    };
    return { session, other, quiet, otherGets, close };
  }

  it("a client that sent its close but keeps the connection open pauses no one: the other client's output flows", async function () {
    requireProgram(this, "yes");
    const c = await yesWithTwoClients();
    await waitFor(() => c.other.state.text.length > 1_000_000, 15_000, "output");
    c.quiet.sendClose(); // the runner's socket is closing from here on, for up to ws's 30 s close timeout
    await new Promise((r) => setTimeout(r, 500));
    await c.otherGets(4_000_000, "output keeps flowing to the other client");
    await c.close();
  });

  it("a client that stopped reading, holding the terminal paused, then sent its close: the others' output resumes", async function () {
    requireProgram(this, "yes");
    const c = await yesWithTwoClients();
    c.quiet.stopReading();
    await waitFor(() => c.session.isPaused, 15_000, "the pause the quiet client's backlog causes");
    c.quiet.sendClose();
    await c.otherGets(4_000_000, "output resumes for the other client");
    await c.close();
  });

  it("accepts ?token= and refuses unknown terminals with 404", async () => {
    const { terminal } = await terms.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    const url = `${t.runner.url.replace(/^http/, "ws")}/ws/terminals/${terminal!.terminalId}?token=${t.token}`;
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.close();
    assert.equal(await upgradeStatus(`${t.runner.url}/ws/terminals/nope`, t.token), 404);
    await terms.closeTerminal({ terminalId: terminal!.terminalId });
  });
});

/**
 * A WebSocket client on a raw TCP socket that can send its close frame and then neither answer nor
 * close its side, reading (and dropping) all the while: the runner's socket stays CLOSING.
 */
async function halfClosingClient(url: string, path: string) {
  const { port, hostname } = new URL(url);
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
  let ended = false;
  socket.on("close", () => (ended = true));
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      socket.resume(); // from here on, every byte is read and dropped
      if (head.startsWith("HTTP/1.1 101")) resolve();
      else reject(new Error(head.split("\r\n")[0]));
    };
    socket.on("data", onData);
  });
  return {
    sendClose() {
      const mask = randomBytes(4);
      const code = Buffer.from([1000 >> 8, 1000 & 0xff]).map((b, i) => b ^ mask[i]!);
      socket.write(Buffer.concat([Buffer.from([0x88, 0x82]), mask, code]));
    },
    stopReading: () => socket.pause(),
    closed: () => ended,
    destroy: () => socket.destroy(),
  };
}
