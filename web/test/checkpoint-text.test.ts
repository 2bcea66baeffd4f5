/** The History panel's words for checkpoints and changed files (web/src/ide/history/checkpoint-text.ts). */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { CheckpointSchema, FileChangeKind, FileChangeSchema } from "../../gen/devex/core/v1/checkpoint_pb.js";
import {
  changeSize,
  changesSummary,
  checkpointContents,
  checkpointTitle,
  noDiffText,
} from "../src/ide/history/checkpoint-text.js";

describe("web: checkpoint words", () => {
  it("a title: the name, else why an automatic one was made", () => {
    assert.equal(checkpointTitle({ name: "tests pass", auto: "" }), "tests pass");
    assert.equal(checkpointTitle({ name: "", auto: "before-stop" }), "Saved before a stop");
    assert.equal(checkpointTitle({ name: "", auto: "fork" }), "Saved for a fork");
    assert.equal(checkpointTitle({ name: "", auto: "nightly" }), "Saved nightly");
    assert.equal(checkpointTitle({ name: "", auto: "" }), "Unnamed checkpoint");
  });

  it("what a checkpoint holds", () => {
    assert.equal(checkpointContents(create(CheckpointSchema, { files: 1n, bytes: 12n })), "1 file · 12 B");
    assert.equal(
      checkpointContents(create(CheckpointSchema, { files: 40n, bytes: 3n * 1024n * 1024n })),
      "40 files · 3.0 MB",
    );
  });

  it("sizes and modes of a change, and why its diff is not shown", () => {
    const change = (kind: FileChangeKind, more = {}) => create(FileChangeSchema, { path: "f", kind, ...more });
    assert.equal(changeSize(change(FileChangeKind.ADDED, { sizeAfter: 2048n })), "2.0 KB");
    assert.equal(changeSize(change(FileChangeKind.REMOVED, { sizeBefore: 5n })), "5 B");
    assert.equal(changeSize(change(FileChangeKind.CHANGED, { sizeBefore: 5n, sizeAfter: 9n })), "5 B → 9 B");
    assert.equal(changeSize(change(FileChangeKind.CHANGED, { sizeBefore: 5n, sizeAfter: 5n })), "5 B");
    assert.equal(changeSize(change(FileChangeKind.MODE, { modeBefore: 0o100644, modeAfter: 0o100755 })), "644 → 755");
    assert.equal(
      noDiffText(change(FileChangeKind.CHANGED, { patchOmitted: "binary" })),
      "A binary file: there is no text diff to show.",
    );
    assert.equal(noDiffText(change(FileChangeKind.MODE)), "Only its permissions changed.");
    assert.equal(noDiffText(change(FileChangeKind.ADDED)), "An empty file.");
    assert.equal(noDiffText(change(FileChangeKind.CHANGED, { patchOmitted: "odd" })), "No diff: odd.");
  });

  it("how many files changed", () => {
    assert.equal(changesSummary(0), "No changes since this checkpoint.");
    assert.equal(changesSummary(1), "1 file changed since then.");
    assert.equal(changesSummary(3), "3 files changed since then.");
  });
});
