/**
 * Checkpoints from the CLI (CheckpointService): `devex checkpoint <repl>` names the repl's current
 * files, `devex checkpoints <repl>` lists them, `devex checkpoint delete`, `devex restore` (prints the
 * automatic checkpoint that undoes it) and `devex fork` (prints the new repls' ids). A command's
 * result for scripts (an id) goes to stdout, what to do next to stderr, as `devex template save`.
 */
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Checkpoint, CheckpointSchema } from "../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";
import { printable } from "../../lib/client/audit-listing.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { CliError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import { formatBytes, formatTable } from "./table.js";

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * What to tell the user about a failed checkpoint call on a repl just resolved. Core answers
 * NotFound both for the repl and for a checkpoint; its message says which ("repl X has no
 * checkpoint "Y""), and a missing checkpoint is named with where to see the repl's ones (and
 * `hint`'s advice about that message).
 */
export function checkpointError(
  e: unknown,
  ref: string,
  replId: string,
  hint: (message: string) => string = () => "",
): CliError {
  if (e instanceof ConnectError && e.code === Code.NotFound && /has no checkpoint /.test(e.rawMessage))
    return new CliError(`${printable(e.rawMessage)} (see devex checkpoints ${replId}${hint(e.rawMessage)})`);
  return describeError(e, ref);
}

/** A time as `devex audit` shows it: UTC, to the second. */
export const shownTime = (c: Checkpoint) =>
  c.createTime
    ? timestampDate(c.createTime)
        .toISOString()
        .replace(/\.\d+Z$/, "Z")
    : "";

/** "manual" for one made by hand, otherwise why core made it ("before-stop", "before-restore", "fork"). */
const kindOf = (c: Checkpoint) => (c.auto ? printable(c.auto) : "manual");

const summary = (c: Checkpoint) => `${c.files} files, ${formatBytes(c.bytes)}`;

export interface CreateOptions {
  name?: string;
  message?: string;
}

/** `devex checkpoint <repl> [-m message] [--name name]`: prints the new checkpoint's id. */
export async function createCheckpoint(core: CoreClients, ref: string, o: CreateOptions, io: Io): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const { checkpoint } = await core.checkpoints
    .createCheckpoint({ replId, name: o.name ?? "", message: o.message ?? "" })
    .catch((e) => {
      throw checkpointError(e, ref, replId);
    });
  if (!checkpoint) throw new CliError("the server returned no checkpoint");
  io.stdout.write(`${checkpoint.checkpointId}\n`);
  io.stderr.write(
    `checkpoint ${checkpoint.checkpointId} of ${replId} (${summary(checkpoint)}); ` +
      `go back to it with: devex restore ${replId} ${checkpoint.checkpointId}\n`,
  );
}

/** `devex checkpoints <repl> [--json]`: newest first. */
export async function listCheckpoints(
  core: CoreClients,
  ref: string,
  json: boolean,
  out: NodeJS.WritableStream,
): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const { checkpoints } = await core.checkpoints.listCheckpoints({ replId }).catch((e) => {
    throw checkpointError(e, ref, replId);
  });
  if (json) {
    out.write(checkpoints.map((c) => `${JSON.stringify(toJson(CheckpointSchema, c))}\n`).join(""));
    return;
  }
  if (!checkpoints.length) {
    out.write(`no checkpoints of ${replId}: make one with devex checkpoint ${replId}\n`);
    return;
  }
  const rows = checkpoints.map((c) => [
    c.checkpointId,
    shownTime(c),
    kindOf(c),
    printable(c.name),
    String(c.files),
    formatBytes(c.bytes),
    printable(c.message),
  ]);
  out.write(formatTable(["ID", "CREATED", "KIND", "NAME", "FILES", "SIZE", "MESSAGE"], rows));
}

/** `devex checkpoint delete <repl> <id>`. */
export async function deleteCheckpoint(
  core: CoreClients,
  ref: string,
  checkpointId: string,
  out: NodeJS.WritableStream,
): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  await core.checkpoints.deleteCheckpoint({ replId, checkpointId }).catch((e) => {
    throw checkpointError(e, ref, replId);
  });
  out.write(`deleted checkpoint ${checkpointId} of ${replId}\n`);
}

/** `devex restore <repl> <id>`: prints the id of the automatic checkpoint that undoes it. */
export async function restoreCheckpoint(core: CoreClients, ref: string, checkpointId: string, io: Io): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const res = await core.checkpoints.restoreCheckpoint({ replId, checkpointId }).catch((e) => {
    throw checkpointError(e, ref, replId);
  });
  const undo = res.undo?.checkpointId ?? "";
  const restarted =
    res.repl?.status === ReplStatus.RUNNING ? " and restarted it (its terminals and programs ended)" : "";
  io.stdout.write(`${undo}\n`);
  io.stderr.write(
    `restored ${replId} to checkpoint ${checkpointId}${restarted}; undo with: devex restore ${replId} ${undo}\n`,
  );
}

export interface ForkOptions {
  /** Undefined: the repl's current files (core checkpoints them first). */
  checkpointId?: string;
  name?: string;
  count?: number;
}

/** `devex fork <repl> [<id>] [--name n] [--count k]`: prints the new repls' ids, one a line. */
export async function forkRepl(core: CoreClients, ref: string, o: ForkOptions, io: Io): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const res = await core.checkpoints
    .forkRepl({ replId, checkpointId: o.checkpointId ?? "", name: o.name ?? "", count: o.count ?? 1 })
    .catch((e) => {
      throw checkpointError(e, ref, replId);
    });
  const ids = res.repls.map((r) => r.replId);
  io.stdout.write(ids.map((id) => `${id}\n`).join(""));
  const at = o.checkpointId
    ? `checkpoint ${o.checkpointId}`
    : `its current files (checkpoint ${res.checkpoint?.checkpointId ?? ""})`;
  const names = res.repls.map((r) => JSON.stringify(printable(r.name))).join(", ");
  const what = ids.length === 1 ? "a stopped repl" : `${ids.length} stopped repls`;
  io.stderr.write(`forked ${replId} at ${at} into ${what} (${names}); start one with: devex start ${ids[0]}\n`);
}
