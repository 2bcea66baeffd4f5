/**
 * ForkRepl: new stopped repls of the caller from a checkpoint of theirs (or from a checkpoint of the
 * repl's current files, made first: automatic, "fork"). Each fork's stored trees are made by lib/sync
 * forkCheckpoint, metadata only, sharing the parent's content, and start with a checkpoint of their
 * own under the same id ("forked-from"); its record copies the parent's settings and environment. All of it happens under the parent's lock, which a checkpoint's deletion
 * also takes: the checkpoint a fork borrows from cannot go while the fork is made. Quota: every fork
 * counts; past the quota none of this call's forks is kept.
 */
import { resourceExhausted } from "../../../../lib/kit/errors.js";
import {
  abandonFork,
  type CheckpointSummary,
  checkpointStored,
  forkCheckpoint,
  readCheckpoint,
} from "../../../../lib/sync/sync.js";
import { getOwned, operationSignal, withReplLock } from "../repl/common.js";
import { newReplId } from "../repl/create.js";
import type { ReplDeps } from "../repl/deps.js";
import { sealContext } from "../repl/environment.js";
import type { ReplRecord, StoredVariable } from "../state/store.js";
import { checkpointLocked, refuseUnlessSettled } from "./create.js";
import { api, homeTree, onHome, workspaceTree } from "./trees.js";

export interface ForkInput {
  replId: string;
  /** "": the repl's current files. */
  checkpointId: string;
  /** "": the parent's name. */
  name: string;
  count: number;
}

const quotaError = (quota: number) =>
  resourceExhausted(`repl quota reached: at most ${quota} repls per user (DEVEX_REPL_QUOTA); delete one first`);

/**
 * A fork's record: the parent's settings and environment, a new id, stopped. Secrets are sealed to
 * their repl (secret-box.ts), so each is opened and sealed again for the fork.
 */
function forkRecord(deps: ReplDeps, parent: ReplRecord, name: string, now: number): ReplRecord {
  const { replId: _, status: _s, lastError: _e, createTime: _c, updateTime: _u, persistTime: _p, ...settings } = parent;
  const replId = newReplId();
  const env = parent.env && resealed(deps, parent, replId);
  return {
    ...settings,
    ...(env ? { env } : {}),
    replId,
    name,
    status: "stopped",
    createTime: now,
    updateTime: now,
    persistTime: now,
    lastError: "",
  };
}

function resealed(deps: ReplDeps, parent: ReplRecord, replId: string): Record<string, StoredVariable> {
  return Object.fromEntries(
    Object.entries(parent.env ?? {}).map(([name, v]) => {
      if (v.sealed === undefined) return [name, v];
      const plain = deps.secrets.open(v.sealed, sealContext(parent.replId, name));
      return [name, { ...v, sealed: deps.secrets.seal(plain, sealContext(replId, name)) }];
    }),
  );
}

export async function forkRepl(
  deps: ReplDeps,
  owner: string,
  input: ForkInput,
  signal: AbortSignal,
): Promise<{ repls: ReplRecord[]; checkpoint: CheckpointSummary }> {
  const count = Math.max(1, input.count);
  const parent = await getOwned(deps, owner, input.replId);
  refuseUnlessSettled(parent);
  if ((await deps.state.countRepls(owner)) + count > deps.quota) throw quotaError(deps.quota);
  return withReplLock(deps, input.replId, signal, refuseUnlessSettled, async () => {
    const p = await getOwned(deps, owner, input.replId);
    refuseUnlessSettled(p);
    const checkpoint = input.checkpointId
      ? await api(p.replId, () => readCheckpoint(workspaceTree(deps, p, signal), input.checkpointId))
      : await checkpointLocked(deps, p, { auto: "fork", name: "forked" });
    const made: ReplRecord[] = [];
    // On core's deadline, not the caller's: a hang-up must not leave half a fork.
    const op = operationSignal(deps);
    try {
      for (let i = 0; i < count; i++) {
        const name = (input.name || `${p.name.slice(0, 55)} fork`) + (count > 1 ? ` #${i + 1}` : "");
        const fork = forkRecord(deps, p, name, Date.now());
        made.push(fork);
        const treeOf = (t: typeof workspaceTree) => ({
          ...t(deps, p, op),
          checkpoint: checkpoint.id,
          to: t(deps, fork).prefix,
        });
        await api(p.replId, () => forkCheckpoint(treeOf(workspaceTree)));
        await onHome(() => forkCheckpoint(treeOf(homeTree)));
        // Its starting point, under the parent's checkpoint id: a fork can be diffed against it.
        const origin = { id: checkpoint.id, auto: "forked-from", name: `forked from ${p.name}` };
        await checkpointStored(workspaceTree(deps, fork, op), origin);
        await onHome(() => checkpointStored(homeTree(deps, fork, op), origin));
        if (!(await deps.state.createRepl(fork, deps.quota))) {
          throw quotaError(deps.quota);
        }
      }
    } catch (err) {
      await undo(deps, p, checkpoint.id, made);
      throw err;
    }
    for (const f of made) deps.events.publish(f.replId, { repl: f });
    deps.log.info({ replId: p.replId, checkpoint: checkpoint.id, forks: made.map((f) => f.replId) }, "repl forked");
    return { repls: made, checkpoint };
  });
}

/**
 * Removes forks of a failed call: their records (those written), their stored trees, and their
 * borrower records at every lender, found from the checkpoint (a fork cut short has no index to
 * name them).
 */
async function undo(deps: ReplDeps, parent: ReplRecord, checkpointId: string, made: ReplRecord[]) {
  const signal = operationSignal(deps);
  for (const f of made) {
    try {
      if (await deps.state.getRepl(f.replId)) await deps.state.deleteRepl(f.replId, f.owner);
      for (const tree of [workspaceTree, homeTree]) {
        const from = tree(deps, parent, signal);
        await abandonFork({ ...from, checkpoint: checkpointId, to: tree(deps, f).prefix });
      }
    } catch (err) {
      deps.log.warn({ err, replId: f.replId }, "could not remove a fork of a failed ForkRepl");
    }
  }
}
