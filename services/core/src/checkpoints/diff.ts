/**
 * DiffCheckpoints: what differs from one checkpoint to another, or to the repl's current files (a
 * running repl's are saved first, under its lock). Compared by hash from the stored maps; contents
 * are read only for the text files whose unified diff is asked for, within a budget.
 */

import { failedPrecondition } from "../../../../lib/kit/errors.js";
import { TEXT_DIFF_MAX } from "../../../../lib/sync/diff.js";
import { readNewest } from "../../../../lib/sync/remote.js";
import type { FullMap } from "../../../../lib/sync/state.js";
import { checkpointMap, diffMaps, type FileChange, unifiedDiff } from "../../../../lib/sync/sync.js";
import { getOwned, withReplLock } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import { persistIfRunning, refuseUnlessSettled } from "./create.js";
import { api, workspaceTree } from "./trees.js";

/** All patches of one call together. */
export const PATCHES_MAX = 4 * 1024 * 1024;

export interface DiffInput {
  replId: string;
  from: string;
  /** "": the current files. */
  to: string;
  includePatches: boolean;
  paths: string[];
}

export interface DiffedFile extends FileChange {
  patch?: string;
  patchOmitted?: string;
}

/** The newest stored state, after saving a running repl's files (as it is once the lock is held). */
async function current(deps: ReplDeps, owner: string, replId: string, signal: AbortSignal): Promise<FullMap> {
  const r = await withReplLock(deps, replId, signal, refuseUnlessSettled, async () => {
    const locked = await getOwned(deps, owner, replId);
    refuseUnlessSettled(locked);
    await persistIfRunning(deps, locked);
    return locked;
  });
  const newest = await api(replId, () => readNewest(workspaceTree(deps, r, signal), 4));
  if (!newest) throw failedPrecondition(`repl ${replId} has no stored files yet: start it once`);
  return newest;
}

const under = (paths: string[]) => (path: string) =>
  paths.length === 0 || paths.some((p) => path === p || path.startsWith(`${p.replace(/\/+$/, "")}/`));

export async function diffCheckpoints(
  deps: ReplDeps,
  owner: string,
  input: DiffInput,
  signal: AbortSignal,
): Promise<DiffedFile[]> {
  const r = await getOwned(deps, owner, input.replId);
  const tree = workspaceTree(deps, r, signal);
  const from = await api(r.replId, () => checkpointMap(tree, input.from));
  const to = input.to
    ? await api(r.replId, () => checkpointMap(tree, input.to))
    : await current(deps, owner, input.replId, signal);
  const changes: DiffedFile[] = diffMaps(from, to).filter((c) => under(input.paths)(c.path));
  if (!input.includePatches) return changes;
  let budget = PATCHES_MAX;
  for (const c of changes) {
    if (c.kind === "mode") continue;
    const sides = [c.before, c.after];
    if (sides.some((s) => s?.link !== undefined)) c.patchOmitted = "symlink";
    else if (sides.some((s) => (s?.size ?? 0) > TEXT_DIFF_MAX)) c.patchOmitted = "too large";
    else if (budget <= 0) c.patchOmitted = "limit reached";
    else {
      const patch = await unifiedDiff(tree, from, to, c.path);
      if (patch === undefined) c.patchOmitted = "binary";
      else if (patch.length > budget) {
        c.patchOmitted = "limit reached";
        budget = 0; // what follows is not read at all
      } else {
        c.patch = patch;
        budget -= patch.length;
      }
    }
  }
  return changes;
}
