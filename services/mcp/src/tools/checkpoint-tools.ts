/**
 * The checkpoint tools: saved states of a repl's files to go back to, compare and fork new repls
 * from (core's CheckpointService). Core is called straight away, with no lookup of the repl first, so
 * each tool needs only core's scope for it (restore_checkpoint: files:write alone); a NotFound is
 * explained afterwards: an unknown repl names the caller's repls, an unknown checkpoint the repl's
 * checkpoints.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Checkpoint } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { DomainError, notFound } from "../../../../lib/kit/errors.js";
import { boundedDiff } from "./checkpoint-diff.js";
import { replSummary } from "./summaries.js";
import type { Caller, ToolContext, ToolImpls } from "./tool-context.js";

type CheckpointTools = Pick<
  ToolImpls,
  "checkpoint" | "listCheckpoints" | "diffCheckpoints" | "restoreCheckpoint" | "forkRepl" | "deleteCheckpoint"
>;

/** Checkpoints an unknown-checkpoint error names. */
const NAMED_CHECKPOINTS = 10;

export function checkpointSummary(c: Checkpoint | undefined) {
  return {
    checkpointId: c?.checkpointId ?? "",
    name: c?.name ?? "",
    message: c?.message ?? "",
    auto: c?.auto ?? "",
    createTime: c?.createTime ? timestampDate(c.createTime).toISOString() : "",
    files: c?.files ?? 0n,
    bytes: c?.bytes ?? 0n,
  };
}

const label = (c: Checkpoint) => `${c.checkpointId}${c.name ? ` "${c.name}"` : ""}${c.auto ? ` (${c.auto})` : ""}`;

export function checkpointTools({ core, sessions, limits }: ToolContext): CheckpointTools {
  /** Core's NotFound for a call about `replId`, said so that the agent can act: which id, and what there is. */
  async function explained(caller: Caller, replId: string, e: unknown): Promise<unknown> {
    if (ConnectError.from(e).code !== Code.NotFound) return e;
    try {
      await sessions.getRepl(caller, replId);
    } catch (unknownRepl) {
      return unknownRepl instanceof DomainError ? unknownRepl : e; // a token that may not list repls: core's words
    }
    const listed = await core(caller)
      .checkpoints.listCheckpoints({ replId })
      .catch(() => undefined);
    if (!listed) return e;
    const { checkpoints } = listed;
    const more = checkpoints.length - NAMED_CHECKPOINTS;
    const known = checkpoints.length
      ? `Its checkpoints, newest first: ${checkpoints.slice(0, NAMED_CHECKPOINTS).map(label).join(", ")}${more > 0 ? ` and ${more} more (list_checkpoints)` : ""}.`
      : "It has none: checkpoint makes one.";
    return notFound(`${ConnectError.from(e).rawMessage}. ${known}`);
  }

  /** Runs a core call about `replId`, its NotFound explained. */
  async function about<T>(caller: Caller, replId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      throw await explained(caller, replId, e);
    }
  }

  return {
    // The calls that change something are not cancelled with the tool call: a restore cut short
    // after stopping the repl would leave it stopped.
    async checkpoint(req, caller) {
      const { replId, name, message } = req;
      const { checkpoint } = await about(caller, replId, () =>
        core(caller).checkpoints.createCheckpoint({ replId, name, message }),
      );
      return { checkpoint: checkpointSummary(checkpoint) };
    },
    async listCheckpoints(req, caller, signal) {
      const { checkpoints } = await about(caller, req.replId, () =>
        core(caller).checkpoints.listCheckpoints({ replId: req.replId }, { signal }),
      );
      return { checkpoints: checkpoints.map(checkpointSummary) };
    },
    async diffCheckpoints(req, caller, signal) {
      const { changes } = await about(caller, req.replId, () =>
        core(caller).checkpoints.diffCheckpoints(
          {
            replId: req.replId,
            fromCheckpointId: req.fromCheckpointId,
            toCheckpointId: req.toCheckpointId,
            includePatches: req.includePatches,
            paths: req.paths,
          },
          { signal },
        ),
      );
      return boundedDiff(changes, limits);
    },
    async restoreCheckpoint(req, caller) {
      const { replId, checkpointId } = req;
      try {
        const res = await about(caller, replId, () =>
          core(caller).checkpoints.restoreCheckpoint({ replId, checkpointId }),
        );
        return { repl: replSummary(res.repl), undo: checkpointSummary(res.undo) };
      } finally {
        // A running repl was restarted on a new runner (or stopped, should the restore have failed
        // halfway): the caller's session on the old one is of no use.
        sessions.forget(caller, replId);
      }
    },
    async forkRepl(req, caller) {
      const { replId, checkpointId, name, count } = req;
      const res = await about(caller, replId, () =>
        core(caller).checkpoints.forkRepl({ replId, checkpointId, name, count }),
      );
      return { repls: res.repls.map(replSummary), checkpoint: checkpointSummary(res.checkpoint) };
    },
    async deleteCheckpoint(req, caller) {
      const { replId, checkpointId } = req;
      await about(caller, replId, () => core(caller).checkpoints.deleteCheckpoint({ replId, checkpointId }));
      return { checkpointId };
    },
  };
}
