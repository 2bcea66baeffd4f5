import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { connectClient, errorText, startTestRunner, type TestRunner } from "./helpers.js";

describe("runner SearchFiles regex budget", () => {
  let t: TestRunner;

  before(async () => {
    t = await startTestRunner();
  });
  after(() => t?.close());

  it("a catastrophically backtracking regex fails within 1 s while other RPCs keep answering", async () => {
    const files = connectClient(FileService, t.runner.url, t.token);
    await mkdir(path.join(t.workspace, "redos"));
    // 4.6 s of backtracking on the runner's own thread before, doubling per extra "a".
    await writeFile(path.join(t.workspace, "redos/evil.txt"), `${"a".repeat(28)}!\n`);
    await writeFile(path.join(t.workspace, "redos/ok.txt"), "hello\n");
    // A normal search first: its results are unchanged, and it starts the matcher thread (a cold
    // start takes 80–380 ms on a loaded machine, outside any budget) as a pooled runner's would be.
    const good = await files.searchFiles({ path: "redos", contentPattern: "^h.l+o$", regex: true });
    assert.deepEqual(
      good.matches.map((m) => `${m.path}:${m.line}:${m.text}`),
      ["redos/ok.txt:1:hello"],
    );

    const started = performance.now();
    const search = errorText(files.searchFiles({ path: "redos", contentPattern: "^(a+)+$", regex: true })).then(
      (err) => ({ err, ms: performance.now() - started }),
    );
    const statLatencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const s = performance.now();
      await files.statFile({ path: "redos/ok.txt" });
      statLatencies.push(performance.now() - s);
    }
    const { err, ms } = await search;

    assert.ok(ms < 1000, `the search answered after ${ms.toFixed(0)} ms`);
    assert.match(err, /resource_exhausted|ResourceExhausted/i);
    assert.match(err, /regular expression took longer than \d+ ms on (one of )?"redos\/evil\.txt".*simplify it/);
    assert.ok(Math.max(...statLatencies) < 200, `StatFile took ${statLatencies.map((l) => l.toFixed(0))} ms`);

    // The runner (with a new matcher thread) still searches normally afterwards.
    const again = await files.searchFiles({ path: "redos", contentPattern: "^h.l+o$", regex: true });
    assert.deepEqual(again.matches, good.matches);
  });

  it("matches across batches of files in walk order, and truncates at max_results", async () => {
    const files = connectClient(FileService, t.runner.url, t.token);
    await mkdir(path.join(t.workspace, "batches"));
    for (let i = 0; i < 150; i++) {
      await writeFile(
        path.join(t.workspace, `batches/f${String(i).padStart(3, "0")}.txt`),
        `a\nhit ${i}\nb\nhit ${i}\n`,
      );
    }
    const all = await files.searchFiles({
      path: "batches",
      contentPattern: "^hit \\d+$",
      regex: true,
      maxResults: 1000,
    });
    assert.equal(all.truncated, false);
    assert.equal(all.paths.length, 150);
    assert.deepEqual(
      all.matches.slice(0, 3).map((m) => `${m.path}:${m.line}:${m.text}`),
      ["batches/f000.txt:2:hit 0", "batches/f000.txt:4:hit 0", "batches/f001.txt:2:hit 1"],
    );
    assert.equal(all.matches.length, 300);
    const cut = await files.searchFiles({ path: "batches", contentPattern: "hit", maxResults: 101 });
    assert.equal(cut.truncated, true);
    assert.equal(cut.matches.length, 101);
    assert.equal(cut.paths.length, 51);
  });

  it("concurrent searches share the bounded matcher threads and all answer", async () => {
    const files = connectClient(FileService, t.runner.url, t.token);
    await mkdir(path.join(t.workspace, "many"));
    for (let i = 0; i < 20; i++) await writeFile(path.join(t.workspace, `many/f${i}.txt`), `x\nneedle ${i}\ny\n`);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => files.searchFiles({ path: "many", contentPattern: "needle \\d+", regex: true })),
    );
    for (const r of results) assert.equal(r.matches.length, 20);
  });
});
