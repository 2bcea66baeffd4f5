import assert from "node:assert/strict";
import { ReplayGate } from "../src/replay-gate.js";

const text = (b: Buffer) => b.toString("latin1");

describe("ReplayGate (reattach input filter)", () => {
  it("drops input during the replay and until the DA1 answer, then passes what follows it", () => {
    const asked: string[] = [];
    const gate = new ReplayGate((q) => asked.push(q), true);
    assert.equal(text(gate.pass(Buffer.from("typed during the replay"))), "");
    gate.replayed();
    assert.deepEqual(asked, ["\x1b[c"]);
    // A replayed query's answer, then the answer to the gate's own query split over two reads.
    assert.equal(text(gate.pass(Buffer.from("\x1b[2;1R\x1b[?1;"))), "");
    assert.equal(text(gate.pass(Buffer.from("2cls\r"))), "ls\r");
    assert.equal(text(gate.pass(Buffer.from("\x1b[?1;2c"))), "\x1b[?1;2c", "once open, everything passes");
    gate.dispose();
  });

  it("opens after the timeout when the terminal never answers", async () => {
    const gate = new ReplayGate(() => {}, true, 50);
    gate.replayed();
    assert.equal(text(gate.pass(Buffer.from("x"))), "");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(text(gate.pass(Buffer.from("y"))), "y");
  });

  it("passes everything and asks nothing when no replay comes", () => {
    const asked: string[] = [];
    const gate = new ReplayGate((q) => asked.push(q), false);
    gate.replayed();
    assert.equal(text(gate.pass(Buffer.from("echo hi\r"))), "echo hi\r");
    assert.deepEqual(asked, []);
  });
});
