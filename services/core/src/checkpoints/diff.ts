/**
 * DiffCheckpoints: what differs from one checkpoint to another, or to the repl's current files (a
 * running repl's are saved first, under its lock). Compared by hash from the stored maps; contents
 * are read only for the text files whose unified diff is asked for, within a budget.
 */

import { TEXT_DIFF_MAX } from "../../../../lib/sync/diff.js";
import { readRemote } from "../../../../lib/sync/remote.js";
import type { FullMap } from "../../../../lib/sync/state.js";
import { checkpointMap, diffMaps, type FileChange, unifiedDiff } from "../../../../lib/sync/sync.js";
import { getOwned, homePrefix, operationSignal, withReplLock, workspacePrefix } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import type { ReplRecord } from "../state/store.js";
import { refuseUnlessSettled } from "./create.js";
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

/** The newest stored state, after saving a running repl's files. */
async function current(deps: ReplDeps, r: ReplRecord, signal: AbortSignal): Promise<FullMap> {
  await withReplLock(deps, r.replId, signal, refuseUnlessSettled, async () => {
    const session = r.status === "running" ? await deps.state.getActiveSession(r.replId) : undefined;
    if (!session) return;
    const req = { replId: r.replId, owner: r.owner, runnerId: session.runnerId };
    await deps.driver.persist(
      { ...req, workspacePrefix: workspacePrefix(r), homePrefix: homePrefix(r) },
      operationSignal(deps),
    );
  });
  return api(r.replId, () => readRemote(workspaceTree(deps, r, signal), 4));
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
  const to = input.to ? await api(r.replId, () => checkpointMap(tree, input.to)) : await current(deps, r, signal);
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
