/**
 * Reattach replays put nothing into the shell (issue 13): after `vi` or `printf '\e[c\e[6n'` ran, a
 * fresh client whose real emulator (@xterm/headless) answers every query and forwards every answer
 * to the terminal, as a naive client would, reattaches. A `cat -v` reading the PTY (no echo, no
 * line buffering) shows whatever arrives: nothing may arrive before the marker the test types.
 */
import assert from "node:assert/strict";
import type { Client } from "@connectrpc/connect";
import WebSocket from "ws";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { Emulator } from "./emulator.js";
import { connectClient, openTerminalSocket, sleep, startTestRunner, type TestRunner, waitFor } from "./helpers.js";

const COLS = 80;
const ROWS = 24;
/** Typed once the shell reads raw input: everything cat prints before it arrived unasked. */
const READ_RAW = "stty -icanon -echo; echo cat-$((1+1))-ready; cat -v\n";

/** A client with a real emulator on the WebSocket bridge: the replay, then live output, into it. */
async function attachEmulator(url: string, terminalId: string, token: string) {
  const ws = new WebSocket(
    `${url.replace(/^http/, "ws")}/ws/terminals/${terminalId}?replay=1&cols=${COLS}&rows=${ROWS}`,
    ["devex.terminal.v1", `bearer.${token}`],
  );
  const emulator = new Emulator(COLS, ROWS, (answer) => ws.send(Buffer.from(answer), { binary: true }));
  const state = { replayLeft: -1, replayParsed: false, live: "" };
  let parsing = Promise.resolve();
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      const frame = JSON.parse(data.toString());
      if (frame.attached) state.replayLeft = Number(frame.attached.replayBytes ?? 0);
      if (state.replayLeft === 0) state.replayParsed = true;
      return;
    }
    const replayed = Math.min(state.replayLeft, data.length);
    state.replayLeft -= replayed;
    state.live += data.subarray(replayed).toString();
    parsing = parsing.then(() => emulator.write(data));
    if (replayed > 0 && state.replayLeft === 0) void parsing.then(() => (state.replayParsed = true));
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  await waitFor(() => state.replayParsed, 10_000, "the replay parsed by the emulator");
  return { ws, emulator, state };
}

describe("terminal reattach with a real emulator as the client", function () {
  this.timeout(60_000);
  let t: TestRunner;
  let terms: Client<typeof TerminalService>;

  before(async function () {
    requireProgram(this, "bash");
    requireProgram(this, "vi");
    requireProgram(this, "cat");
    t = await startTestRunner();
    terms = connectClient(TerminalService, t.runner.url, t.token);
  });
  after(() => t?.close());

  async function shell(): Promise<string> {
    const { terminal } = await terms.createTerminal({
      command: ["bash", "--norc", "--noprofile"],
      size: { cols: COLS, rows: ROWS },
      env: { PS1: "$ " },
    });
    return terminal!.terminalId;
  }

  /** Reattaches with an answering emulator and proves the PTY got nothing but the marker. */
  async function reattachQuietly(id: string) {
    const b = await attachEmulator(t.runner.url, id, t.token);
    // Answers to a replayed query would be sent while the emulator parses the replay; allow them
    // time to reach cat, then type the marker.
    await sleep(300);
    b.ws.send(Buffer.from("MARK\n"), { binary: true });
    await waitFor(() => b.state.live.includes("MARK"), 10_000, "cat echoing the marker");
    assert.equal(b.state.live.slice(0, b.state.live.indexOf("MARK")), "", "input reached the PTY before the marker");
    assert.equal(b.emulator.replies, "", "the replay made the emulator answer");
    return b;
  }

  it("after printf '\\e[c\\e[6n': the replay shows the output, and the shell receives nothing", async () => {
    const id = await shell();
    const a = openTerminalSocket(t.runner.url, id, t.token);
    await a.opened;
    a.ws.send(Buffer.from(`echo before-$((6*7)); printf '\\e[c\\e[6n'; ${READ_RAW}`));
    await waitFor(() => /cat-2-ready/.test(a.state.text), 10_000, "cat reading the PTY");
    assert.ok(a.state.text.includes("\x1b[c\x1b[6n"), "the raw output holds the queries");
    a.ws.terminate();
    await a.closed;

    const b = await reattachQuietly(id);
    assert.match(b.emulator.text(), /^before-42$/m);
    assert.match(b.emulator.text(), /^cat-2-ready$/m);
    b.ws.close();
    await terms.closeTerminal({ terminalId: id });
  });

  it("after vi: a reattach during vi shows vi's screen, one after it shows the shell, and the shell receives nothing", async () => {
    const id = await shell();
    const a = openTerminalSocket(t.runner.url, id, t.token);
    await a.opened;
    a.ws.send(Buffer.from("echo before-vi-$((6*7)); vi\n"));
    const altScreen = "\x1b[?1049h";
    await waitFor(() => a.state.text.split(altScreen)[1]?.includes("~"), 10_000, "vi's screen");
    a.ws.terminate();
    await a.closed;

    // vi still runs: the replay restores its alternate screen.
    const during = await attachEmulator(t.runner.url, id, t.token);
    assert.equal(during.emulator.bufferType, "alternate");
    assert.match(during.emulator.text(), /^~/m);
    during.ws.send(Buffer.from("\x1b:q\r"), { binary: true });
    await waitFor(() => during.state.live.includes("\x1b[?1049l"), 10_000, "vi leaving the alternate screen");
    during.ws.send(Buffer.from(READ_RAW), { binary: true });
    await waitFor(() => /cat-2-ready/.test(during.state.live), 10_000, "cat reading the PTY");
    during.ws.terminate();

    const b = await reattachQuietly(id);
    assert.equal(b.emulator.bufferType, "normal");
    assert.match(b.emulator.text(), /^before-vi-42$/m);
    b.ws.close();
    await terms.closeTerminal({ terminalId: id });
  });
});
