/**
 * Flow control under a flood: `yes` for 5 s into a WebSocket client that reads slowly (its TCP
 * socket paused most of the time, acking what it read). The runner runs as a child process so its
 * RSS can be sampled from /proc; a second terminal must keep answering quickly meanwhile.
 */
import assert from "node:assert/strict";
import type { Client } from "@connectrpc/connect";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type ChildRunner, connectClient, openTerminalSocket, sleep, startChildRunner, waitFor } from "./helpers.js";

const FLOOD_MS = 5000;
/** Peak RSS bound for the runner process during the flood. */
const RSS_BOUND = 250 * 1024 * 1024;
/** Largest growth over the RSS before the flood. */
const GROWTH_BOUND = 64 * 1024 * 1024;
const ECHO_BOUND_MS = 500;

describe("runner terminal flood with a slow WebSocket reader", function () {
  this.timeout(40_000);
  let r: ChildRunner;
  let terms: Client<typeof TerminalService>;

  before(async function () {
    requireProgram(this, "yes");
    r = await startChildRunner();
    terms = connectClient(TerminalService, r.url, r.token);
  });
  after(() => r?.close());

  it(`keeps RSS bounded and a second terminal responsive while \`yes\` floods for ${FLOOD_MS / 1000} s`, async () => {
    const flood = (await terms.createTerminal({ command: ["yes"] })).terminal!;
    const other = (await terms.createTerminal({ command: ["bash", "--norc", "--noprofile"] })).terminal!;
    const probe = openTerminalSocket(r.url, other.terminalId, r.token);
    await probe.opened;
    await sleep(200);
    const baseline = r.rss();

    const slow = openTerminalSocket(r.url, flood.terminalId, r.token);
    await slow.opened;
    // biome-ignore lint/suspicious/noExplicitAny: the ws client's TCP socket, paused to read slowly
    const socket = (slow.ws as any)._socket as import("node:net").Socket;
    let received = 0;
    slow.ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      received += data.length;
      slow.ws.send(JSON.stringify({ ack: String(data.length) }));
    });
    slow.state.text = "";
    const reader = setInterval(() => {
      socket.resume();
      setTimeout(() => socket.pause(), 5);
      slow.state.text = ""; // do not keep the flood in test memory
    }, 100);

    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, r.rss())), 50);
    const latencies: number[] = [];
    const end = Date.now() + FLOOD_MS;
    let n = 0;
    while (Date.now() < end) {
      n++;
      const want = `pong-${n * 7}`;
      const t0 = performance.now();
      probe.ws.send(Buffer.from(`echo pong-$((${n}*7))\n`));
      await waitFor(() => probe.state.text.includes(want), 5000, `echo ${n}`);
      latencies.push(performance.now() - t0);
      await sleep(100);
    }
    clearInterval(sampler);
    clearInterval(reader);
    socket.resume();
    slow.ws.terminate();
    probe.ws.close();
    const maxLatency = Math.max(...latencies);
    const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
    console.log(
      `      flood: runner RSS baseline ${mib(baseline)}, peak ${mib(peak)} (bound ${mib(RSS_BOUND)}); ` +
        `slow reader got ${mib(received)}; echo round trips n=${latencies.length} max ${maxLatency.toFixed(1)} ms`,
    );
    assert.ok(received > 0, "the slow reader got output");
    assert.ok(peak < RSS_BOUND, `peak RSS ${mib(peak)} over ${mib(RSS_BOUND)}`);
    assert.ok(peak - baseline < GROWTH_BOUND, `RSS grew by ${mib(peak - baseline)}`);
    assert.ok(maxLatency < ECHO_BOUND_MS, `echo took ${maxLatency.toFixed(1)} ms`);
    await terms.closeTerminal({ terminalId: flood.terminalId });
    await terms.closeTerminal({ terminalId: other.terminalId });
  });
});
