/**
 * The terminal mirror under floods: it skips ahead instead of parsing every byte, and what it
 * replays is still what a terminal fed every byte shows. Each case feeds the same output, in
 * PTY-sized chunks, to the mirror and to a reference headless xterm that parses all of it, and
 * compares their serializations (scrollback, screen, cursor and modes).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { SerializeAddon as SerializeAddonType } from "@xterm/addon-serialize";
import type { ITerminalAddon } from "@xterm/headless";
import {
  FEED_BYTES,
  KEEP_BYTES,
  loadXterm,
  MIRROR_SCROLLBACK_LINES,
  PARSE_BURST,
  PARSE_RATE,
  SKIP_BYTES,
  TerminalMirror,
} from "../src/terminals/mirror.js";
import { modesOf } from "../src/terminals/skipped-modes.js";

const require = createRequire(import.meta.url);
const { Terminal } = require("@xterm/headless") as typeof import("@xterm/headless");
const { SerializeAddon } = require("@xterm/addon-serialize") as typeof import("@xterm/addon-serialize");

async function reference(chunks: Buffer[], cols: number, rows: number): Promise<string> {
  const term = new Terminal({ cols, rows, scrollback: MIRROR_SCROLLBACK_LINES, allowProposedApi: true });
  const serializer: SerializeAddonType = new SerializeAddon();
  term.loadAddon(serializer as unknown as ITerminalAddon);
  for (const c of chunks) term.write(c);
  return new Promise((resolve) => term.write("", () => resolve(serializer.serialize())));
}

/** `bytes` of output as `make` writes it, cut into 4 KiB chunks as a PTY delivers them. */
function chunked(prefix: string, bytes: number, line: (i: number) => string, suffix = ""): Buffer[] {
  let text = prefix;
  for (let i = 0; text.length < bytes; i++) text += line(i);
  text += suffix;
  const all = Buffer.from(text);
  const out: Buffer[] = [];
  for (let o = 0; o < all.length; o += 4096) out.push(all.subarray(o, o + 4096));
  return out;
}

/**
 * Feeds `before` and lets the mirror catch up (the terminal's history), then `flood` all at once
 * (faster than xterm parses), and compares the replay with a terminal fed everything.
 */
async function compare(flood: Buffer[], before: Buffer[] = [], cols = 100, rows = 30) {
  const mirror = new TerminalMirror(cols, rows);
  for (const c of before) mirror.write(c);
  await mirror.snapshot();
  for (const c of flood) mirror.write(c);
  const replay = (await mirror.snapshot()).toString();
  assert.equal(
    replay,
    await reference([...before, ...flood], cols, rows),
    "the replay is what a terminal fed everything shows",
  );
  return mirror;
}

describe("terminal mirror under floods", function () {
  this.timeout(60_000);
  before(loadXterm);

  it("skips ahead through a 12 MB flood of lines and replays exactly what a full parse shows", async () => {
    const mirror = await compare(chunked("", 12e6, (i) => `line ${i} ${"x".repeat(i % 90)}\r\n`));
    assert.ok(mirror.skippedBytes > 10e6, `skipped ${mirror.skippedBytes} bytes`);
  });

  // Settings made in the middle of a flood fall in the skipped part, which the mirror must carry
  // over. The main screen as the skipped output left it when it switched to the alternate one is
  // not kept, only what the tail draws: here the lines before the switch are those of the
  // history, which the mirror had parsed.
  const line = "lead12\r\n";
  const history = chunked("", 2000 * line.length, () => line);

  it("keeps the alternate screen, cursor keys, bracketed paste, cursor visibility and colours set in the skipped part", async () => {
    const setup = `${line.repeat(300_000)}\x1b[?1049h\x1b[?1h\x1b[?2004h\x1b[?25l\x1b[1;32m`;
    const mirror = await compare(
      chunked(setup, 6e6, (i) => `row ${i}\r\n`),
      history,
    );
    assert.ok(mirror.skippedBytes > 4e6);
  });

  it("follows modes turned off again, and colours changing, within the skipped part", async () => {
    const rows = (i: number) => (i === 100_000 ? "\x1b[?1049l\x1b[?25h\x1b[0m" : `\x1b[3${i % 8}m${i}\r\n`);
    await compare(chunked(`${line.repeat(300_000)}\x1b[?1049h\x1b[?25l`, 6e6, rows, "\x1b[1;4mend"), history);
  });

  it("applies resizes at their place, including one inside the skipped part", async () => {
    const mirror = new TerminalMirror(80, 24);
    const ref = new Terminal({ cols: 80, rows: 24, scrollback: MIRROR_SCROLLBACK_LINES, allowProposedApi: true });
    const serializer: SerializeAddonType = new SerializeAddon();
    ref.loadAddon(serializer as unknown as ITerminalAddon);
    const feed = (c: Buffer) => {
      mirror.write(c);
      ref.write(c);
    };
    for (const c of chunked("", 3e6, (i) => `a${i}\r\n`)) feed(c);
    mirror.resize(120, 40);
    ref.write("", () => ref.resize(120, 40));
    for (const c of chunked("", 2e6, (i) => `b${i} ${"y".repeat(i % 110)}\r\n`)) feed(c);
    const expected = await new Promise<string>((r) => ref.write("", () => r(serializer.serialize())));
    assert.equal((await mirror.snapshot()).toString(), expected);
    assert.ok(mirror.skippedBytes > 0);
  });

  it("does not skip what a terminal that keeps up writes (under the flood threshold)", async () => {
    const mirror = await compare(chunked("\x1b[?1049h", SKIP_BYTES / 2, (i) => `\x1b[${(i % 30) + 1};1Hcell ${i}`));
    assert.equal(mirror.skippedBytes, 0);
  });

  it("parses no more than its budget of a sustained flood, and the replay still matches", async () => {
    // 8 MB/s for 1.5 s, as `cat` of a big file writes: far beyond what the mirror may parse.
    const flood = chunked("", 12e6, (i) => `row ${i} ${"z".repeat(i % 70)}\r\n`);
    const mirror = new TerminalMirror(100, 30);
    const started = performance.now();
    for (let i = 0; i < flood.length; i += 20) {
      for (const c of flood.slice(i, i + 20)) mirror.write(c);
      await new Promise((r) => setTimeout(r, 10));
    }
    const seconds = (performance.now() - started) / 1000;
    const budget = PARSE_BURST + PARSE_RATE * seconds + FEED_BYTES;
    assert.ok(mirror.parsedBytes <= budget, `parsed ${mirror.parsedBytes} bytes in ${seconds} s (budget ${budget})`);
    const replay = (await mirror.snapshot()).toString();
    assert.equal(replay, await reference(flood, 100, 30));
    assert.ok(mirror.parsedBytes + mirror.skippedBytes >= 12e6, "all output was either parsed or skipped");
  });

  it("keeps no frame it was written while output waits: each can be collected young", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const mirror = new TerminalMirror(100, 30);
    // Spends the mirror's parse budget first, so what the flood leaves waits for a while.
    const line = Buffer.from(`${"w".repeat(1000)}\r\n`.repeat(256));
    let written = 0;
    for (let i = 0; i < 100 && mirror.parsedBytes < PARSE_BURST; i++) {
      mirror.write(line);
      written += line.length;
      await new Promise((r) => setTimeout(r, 20));
    }
    const rows = chunked("", 8e6, (i) => `row ${i} ${"q".repeat(i % 70)}\r\n`);
    // Frames of their own, as a session's flush makes them, in a flood beyond the parse budget,
    // written from a function of their own (a suspended async function keeps its last values).
    const writeFrames = () => {
      const refs: Array<WeakRef<ArrayBufferLike>> = [];
      for (let i = 0; i < rows.length; i += 16) {
        const frame = Buffer.concat(rows.slice(i, i + 16));
        refs.push(new WeakRef(frame.buffer));
        mirror.write(frame);
      }
      return refs;
    };
    const refs = writeFrames();
    await new Promise((r) => setImmediate(r));
    gc();
    written += rows.reduce((n, r) => n + r.length, 0);
    assert.ok(written - mirror.parsedBytes - mirror.skippedBytes > 256 * 1024, "output still waits in the mirror");
    const kept = refs.filter((r) => r.deref() !== undefined).length;
    // The slice xterm is parsing is a copy the queue made.
    assert.equal(kept, 0, `${kept} of ${refs.length} frames are still held`);
    await mirror.snapshot();
  });

  it("parses nothing while output streams, skips what a flood leaves beyond SKIP_BYTES, and catches up once it settles", async () => {
    const flood = chunked("\x1b[?1049h\x1b[?25l", 6e6, (i) => `line ${i} ${"s".repeat(i % 60)}\r\n`);
    const mirror = new TerminalMirror(100, 30);
    mirror.hold(true);
    for (const c of flood) mirror.write(c);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(mirror.parsedBytes, 0, "nothing parsed while held");
    assert.ok(mirror.skippedBytes > 4e6, `skipped ${mirror.skippedBytes}`);
    mirror.hold(false);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(mirror.parsedBytes > 0, "parsing resumed once released");
    assert.equal((await mirror.snapshot()).toString(), await reference(flood, 100, 30));
  });

  it("names the modes of skipped output once each, in the order last set", () => {
    const skipped = [
      Buffer.from("\x1b[?1049h\x1b[?25l\x1b(0\x0e\x1b[5;9r\x1b="),
      Buffer.from("\x1b[?25h\x1b[31mx\x1b[?1049l"),
    ];
    assert.equal(modesOf(skipped).toString("latin1"), "\x1b[?25h\x1b[?1049l\x1b[5;9r\x1b=\x1b(0\x0e\x1b[31m");
    assert.ok(KEEP_BYTES < SKIP_BYTES);
  });
});
