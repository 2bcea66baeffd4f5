/**
 * diff_checkpoints' bounds (checkpoint-diff.ts) on core's FileChange messages: kinds named, modes in
 * octal, the summary counting every change, and the files and patch characters cut with a note.
 * checkpoints.e2e.test.ts shows the same against a real core.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { FileChangeKind, FileChangeSchema } from "../../../gen/devex/core/v1/checkpoint_pb.js";
import { boundedDiff, diffSummary } from "../src/tools/checkpoint-diff.js";

const change = (path: string, kind: FileChangeKind, patch = "") =>
  create(FileChangeSchema, {
    path,
    kind,
    patch,
    modeBefore: 0o644,
    modeAfter: kind === FileChangeKind.REMOVED ? 0 : 0o755,
  });

describe("diff_checkpoints' result (checkpoint-diff.ts)", () => {
  it("names each kind, writes modes in octal and sums every change up", () => {
    const changes = [
      change("a", FileChangeKind.MODE),
      change("b", FileChangeKind.REMOVED),
      change("c", FileChangeKind.ADDED),
      change("d", FileChangeKind.REMOVED),
    ];
    const diff = boundedDiff(changes, { diffFiles: 10, patchChars: 10 });
    assert.deepEqual(
      diff.changes.map((c) => [c.path, c.change, c.modeBefore, c.modeAfter]),
      [
        ["a", "mode", "0644", "0755"],
        ["b", "removed", "0644", ""],
        ["c", "added", "0644", "0755"],
        ["d", "removed", "0644", ""],
      ],
    );
    assert.equal(diff.summary, "4 files differ: 1 added, 2 removed, 1 mode");
    assert.equal(diff.note, "");
    assert.equal(diffSummary([change("x", FileChangeKind.CHANGED)]), "1 file differs: 1 changed");
    assert.equal(diffSummary([]), "no files differ");
  });

  it("keeps the patches that fit, in path order, and lists at most diffFiles files", () => {
    const changes = [
      change("a", FileChangeKind.CHANGED, "x".repeat(6)),
      change("b", FileChangeKind.CHANGED, "y".repeat(5)),
      change("c", FileChangeKind.CHANGED, "z".repeat(4)),
      change("d", FileChangeKind.CHANGED, "w"),
    ];
    const diff = boundedDiff(changes, { diffFiles: 3, patchChars: 10 });
    assert.deepEqual(
      diff.changes.map((c) => [c.path, c.patch, c.patchOmitted]),
      [
        ["a", "xxxxxx", ""],
        ["b", "", "limit reached"],
        ["c", "zzzz", ""],
      ],
    );
    assert.equal(diff.summary, "4 files differ: 4 changed");
    assert.equal(
      diff.note,
      "only the first 3 of 4 files (by path) are listed; 1 patch was left out past 10 characters of patches: narrow the diff with paths",
    );
  });
});
