/**
 * The History panel's reading of unified diffs (web/src/ide/history/diff-rows.ts), on patches as
 * core's DiffCheckpoints writes them (the `diff` package's createTwoFilesPatch, as lib/sync does).
 */
import assert from "node:assert/strict";
import { createTwoFilesPatch } from "diff";
import { parseUnifiedDiff } from "../src/ide/history/diff-rows.js";

const patch = (before: string, after: string) => createTwoFilesPatch("a/f", "b/f", before, after);

describe("web: parseUnifiedDiff", () => {
  it("drops the file headers and numbers each line before and after", () => {
    const d = parseUnifiedDiff(patch("one\ntwo\nthree\n", "one\n2\nthree\nfour\n"));
    assert.deepEqual(d.rows, [
      { kind: "hunk", text: "@@ -1,3 +1,4 @@" },
      { kind: "ctx", text: "one", before: 1, after: 1 },
      { kind: "del", text: "two", before: 2 },
      { kind: "add", text: "2", after: 2 },
      { kind: "ctx", text: "three", before: 3, after: 3 },
      { kind: "add", text: "four", after: 4 },
    ]);
    assert.equal(d.added, 2);
    assert.equal(d.removed, 1);
  });

  it("keeps the missing-newline note, and lines that look like headers inside a hunk", () => {
    const d = parseUnifiedDiff(patch("--- x\n", "--- x\n+++ y"));
    assert.deepEqual(
      d.rows.map((r) => [r.kind, r.text]),
      [
        ["hunk", "@@ -1,1 +1,2 @@"],
        ["ctx", "--- x"],
        ["add", "+++ y"],
        ["note", "No newline at end of file"],
      ],
    );
  });

  it("numbers every hunk from its header", () => {
    const before = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
    const after = before.replace("line 2\n", "line two\n").replace("line 28\n", "line twenty-eight\n");
    const rows = parseUnifiedDiff(patch(before, after)).rows;
    assert.deepEqual(
      rows.filter((r) => r.kind === "hunk").map((r) => r.text),
      ["@@ -1,6 +1,6 @@", "@@ -24,7 +24,7 @@"],
    );
    assert.deepEqual(
      rows.filter((r) => r.kind === "add"),
      [
        { kind: "add", text: "line two", after: 2 },
        { kind: "add", text: "line twenty-eight", after: 28 },
      ],
    );
  });

  it("an added file counts from line 1; a patch without hunks (an empty file) has no rows", () => {
    const added = parseUnifiedDiff(createTwoFilesPatch("/dev/null", "b/f", "", "hi\n"));
    assert.deepEqual(added.rows.slice(1), [{ kind: "add", text: "hi", after: 1 }]);
    assert.deepEqual(parseUnifiedDiff(createTwoFilesPatch("/dev/null", "b/f", "", "")).rows, []);
    assert.deepEqual(parseUnifiedDiff("").rows, []);
  });
});
