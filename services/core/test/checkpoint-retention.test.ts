import assert from "node:assert/strict";
import type { CheckpointSummary } from "../../../lib/sync/sync.js";
import { beyondLimits, defaultCheckpointSettings } from "../src/checkpoints/retention.js";

const DAY = 86_400_000;
const now = 100 * DAY;
/** Newest first, as ListCheckpoints gives them: `ages` in days, `auto` marks. */
const list = (ages: number[], auto: boolean[]): CheckpointSummary[] =>
  ages.map((age, i) => ({
    id: `c${i}`,
    time: now - age * DAY,
    generation: 1,
    files: 1,
    bytes: 1,
    ...(auto[i] ? { auto: "before-stop" } : {}),
  }));
const ids = (cs: CheckpointSummary[]) => cs.map((c) => c.id).sort();

describe("checkpoint retention", () => {
  const s = { ...defaultCheckpointSettings, maxCount: 3, maxAgeMs: 30 * DAY };

  it("drops what is too old, then the oldest automatic ones past the count, then the oldest of the rest", () => {
    assert.deepEqual(ids(beyondLimits(list([1, 2, 40], [false, false, false]), s, now)), ["c2"]);
    assert.deepEqual(ids(beyondLimits(list([1, 2, 3, 4, 5], [false, true, false, false, true]), s, now)), ["c1", "c4"]);
    assert.deepEqual(ids(beyondLimits(list([1, 2, 3, 4], [false, false, false, false]), s, now)), ["c3"]);
  });

  it("never drops the checkpoint just made, nor a restore's target, even when the user's own fill the count", () => {
    // Three of the user's, then an automatic one just made (a restore's undo): the oldest of the user's goes.
    const full = list([0, 1, 2, 3], [true, false, false, false]);
    assert.deepEqual(ids(beyondLimits(full, s, now, ["c0"])), ["c3"]);
    // The restore's target is the oldest and too old: it stays, and so does the undo.
    const aged = list([0, 1, 2, 45], [true, false, false, true]);
    assert.deepEqual(ids(beyondLimits(aged, s, now, ["c0", "c3"])), ["c2"]);
  });
});
