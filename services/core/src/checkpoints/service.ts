/** CheckpointService: authenticated caller → checkpoint operations (one file each). */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Checkpoint,
  CheckpointSchema,
  type CheckpointService,
  FileChangeKind,
  FileChangeSchema,
} from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { type CheckpointSummary, deleteCheckpoint } from "../../../../lib/sync/sync.js";
import type { UserOf } from "../auth/principal.js";
import { getOwned, toProto, withReplLock } from "../repl/common.js";
import type { ReplDeps } from "../repl/deps.js";
import { createCheckpoint } from "./create.js";
import { type DiffedFile, diffCheckpoints } from "./diff.js";
import { forkRepl } from "./fork.js";
import { restoreCheckpoint } from "./restore.js";
import { api, homeTree, listFor, onHome, workspaceTree } from "./trees.js";

export const checkpointToProto = (c: CheckpointSummary): Checkpoint =>
  create(CheckpointSchema, {
    checkpointId: c.id,
    name: c.name ?? "",
    message: c.message ?? "",
    auto: c.auto ?? "",
    createTime: timestampFromMs(c.time),
    files: BigInt(c.files),
    bytes: BigInt(c.bytes),
  });

const kinds = {
  added: FileChangeKind.ADDED,
  removed: FileChangeKind.REMOVED,
  changed: FileChangeKind.CHANGED,
  mode: FileChangeKind.MODE,
} as const;

const changeToProto = (c: DiffedFile) =>
  create(FileChangeSchema, {
    path: c.path,
    kind: kinds[c.kind],
    sizeBefore: BigInt(c.before?.size ?? 0),
    sizeAfter: BigInt(c.after?.size ?? 0),
    modeBefore: c.before?.mode ?? 0,
    modeAfter: c.after?.mode ?? 0,
    patch: c.patch ?? "",
    patchOmitted: c.patchOmitted ?? "",
  });

export function createCheckpointService(deps: ReplDeps, userOf: UserOf): ServiceImpl<typeof CheckpointService> {
  return {
    async createCheckpoint(req, ctx) {
      const made = await createCheckpoint(
        deps,
        userOf(ctx).userId,
        req.replId,
        { name: req.name, message: req.message },
        ctx.signal,
      );
      return { checkpoint: checkpointToProto(made) };
    },
    async listCheckpoints(req, ctx) {
      const r = await getOwned(deps, userOf(ctx).userId, req.replId);
      return { checkpoints: (await listFor(deps, r, ctx.signal)).map(checkpointToProto) };
    },
    async deleteCheckpoint(req, ctx) {
      const owner = userOf(ctx).userId;
      await getOwned(deps, owner, req.replId);
      // Under the lock a fork takes: a fork never borrows from a checkpoint being deleted.
      await withReplLock(
        deps,
        req.replId,
        ctx.signal,
        () => {},
        async () => {
          const r = await getOwned(deps, owner, req.replId);
          await api(r.replId, () => deleteCheckpoint(workspaceTree(deps, r, ctx.signal), req.checkpointId));
          await onHome(() => deleteCheckpoint(homeTree(deps, r, ctx.signal), req.checkpointId));
        },
      );
      return {};
    },
    async diffCheckpoints(req, ctx) {
      const input = {
        replId: req.replId,
        from: req.fromCheckpointId,
        to: req.toCheckpointId,
        includePatches: req.includePatches,
        paths: req.paths,
      };
      return { changes: (await diffCheckpoints(deps, userOf(ctx).userId, input, ctx.signal)).map(changeToProto) };
    },
    async restoreCheckpoint(req, ctx) {
      const { repl, undo } = await restoreCheckpoint(deps, userOf(ctx), req.replId, req.checkpointId, ctx.signal);
      return { repl: toProto(deps, repl), undo: checkpointToProto(undo) };
    },
    async forkRepl(req, ctx) {
      const input = { replId: req.replId, checkpointId: req.checkpointId, name: req.name, count: req.count };
      const { repls, checkpoint } = await forkRepl(deps, userOf(ctx).userId, input, ctx.signal);
      return { repls: repls.map((r) => toProto(deps, r)), checkpoint: checkpointToProto(checkpoint) };
    },
  };
}
