/**
 * A repl's stored trees as checkpoints see them: its workspace, and its home when the home was ever
 * stored. Both take the same checkpoint id, so one id restores or forks both. lib/sync's refusals
 * become the API's codes here.
 */
import { failedPrecondition, notFound } from "../../../../lib/kit/errors.js";
import {
  CheckpointNotFoundError,
  type CheckpointSummary,
  listCheckpoints,
  NothingStoredError,
  type StoredTree,
} from "../../../../lib/sync/sync.js";
import { homePrefix, workspacePrefix } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import type { ReplRecord } from "../state/store.js";

export const workspaceTree = (deps: ReplDeps, r: ReplRecord, signal?: AbortSignal): StoredTree => ({
  store: deps.blobs,
  prefix: workspacePrefix(r),
  signal,
});

export const homeTree = (deps: ReplDeps, r: ReplRecord, signal?: AbortSignal): StoredTree => ({
  store: deps.blobs,
  prefix: homePrefix(r),
  signal,
});

/** Runs `fn`, turning lib/sync's refusals into the API's codes. */
export async function api<T>(replId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CheckpointNotFoundError)
      throw notFound(`repl ${replId} has no checkpoint ${JSON.stringify(err.id)}`);
    if (err instanceof NothingStoredError)
      throw failedPrecondition(
        `repl ${replId} has no stored files yet: start it once before checkpointing or forking it`,
      );
    throw err;
  }
}

/** Runs `fn` on the home's tree, unless the home has nothing stored (or no checkpoint by that id). */
export async function onHome<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof NothingStoredError || err instanceof CheckpointNotFoundError) return undefined;
    throw err;
  }
}

export const listFor = (deps: ReplDeps, r: ReplRecord, signal?: AbortSignal): Promise<CheckpointSummary[]> =>
  api(r.replId, () => listCheckpoints(workspaceTree(deps, r, signal)));
