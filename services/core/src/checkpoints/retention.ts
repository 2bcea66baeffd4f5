/**
 * Checkpoint retention, per repl: at most `maxCount` checkpoints (past it, the oldest automatic ones
 * go first, then the oldest of the rest) and none older than `maxAgeMs`. Records only: what they
 * alone kept is collected by the repl's next persist. The home's checkpoint of the same id goes too.
 */
import { type CheckpointSummary, deleteCheckpoint } from "../../../../lib/sync/sync.js";
import type { ReplDeps } from "../repl/deps.js";
import type { ReplRecord } from "../state/store.js";
import { homeTree, listFor, onHome, workspaceTree } from "./trees.js";

export interface CheckpointSettings {
  /** Checkpoints kept per repl (DEVEX_CHECKPOINT_MAX_COUNT). */
  maxCount: number;
  /** Age past which a checkpoint is deleted (DEVEX_CHECKPOINT_MAX_AGE_DAYS). */
  maxAgeMs: number;
  /** An automatic checkpoint after each stop's persist (DEVEX_CHECKPOINT_ON_STOP). */
  onStop: boolean;
}

export const defaultCheckpointSettings: CheckpointSettings = {
  maxCount: 50,
  maxAgeMs: 30 * 86_400_000,
  onStop: true,
};

/**
 * The checkpoints the limits drop, newest-first input. `kept` are never dropped: the one just made
 * (a restore's undo, a fork's origin) and the one a restore goes back to.
 */
export function beyondLimits(
  all: CheckpointSummary[],
  s: CheckpointSettings,
  now: number,
  kept: readonly string[] = [],
): CheckpointSummary[] {
  const old = all.filter((c) => now - c.time > s.maxAgeMs && !kept.includes(c.id));
  const left = all.filter((c) => !old.includes(c));
  const excess = left.length - s.maxCount;
  if (excess <= 0) return old;
  const oldestFirst = [...left].reverse().filter((c) => !kept.includes(c.id));
  const byAuto = [...oldestFirst.filter((c) => c.auto), ...oldestFirst.filter((c) => !c.auto)];
  return [...old, ...byAuto.slice(0, excess)];
}

/** Applies the limits to a repl whose lock the caller holds, sparing `kept`; returns the ids deleted. */
export async function prune(
  deps: ReplDeps,
  r: ReplRecord,
  kept: readonly string[],
  signal?: AbortSignal,
): Promise<string[]> {
  const gone = beyondLimits(await listFor(deps, r, signal), deps.checkpoints, Date.now(), kept);
  for (const c of gone) {
    await deleteCheckpoint(workspaceTree(deps, r, signal), c.id);
    await onHome(() => deleteCheckpoint(homeTree(deps, r, signal), c.id));
  }
  if (gone.length)
    deps.log.info({ replId: r.replId, deleted: gone.map((c) => c.id) }, "checkpoints past retention deleted");
  return gone.map((c) => c.id);
}
