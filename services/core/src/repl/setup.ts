/**
 * A repl's setup command: copied from its template at create ("pending"), taken by the first
 * runner that asks (RunnerControlService.ClaimSetup, atomic in the state store, so it runs once
 * whatever the races), reported back when it ends. A start that finds it still "running" knows the
 * runner that ran it went away before it ended: it failed, and is not run again.
 */
import { create } from "@bufbuild/protobuf";
import { type Setup, SetupSchema, SetupStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { ReplRecord, SetupRecord, StateStore } from "../state/store.js";

const statusOf: Record<SetupRecord["status"], SetupStatus> = {
  pending: SetupStatus.PENDING,
  running: SetupStatus.RUNNING,
  succeeded: SetupStatus.SUCCEEDED,
  failed: SetupStatus.FAILED,
};

export function setupToProto(s: SetupRecord): Setup {
  return create(SetupSchema, {
    command: s.command,
    status: statusOf[s.status],
    exitCode: s.exitCode ?? 0,
    message: s.message ?? "",
  });
}

/** The command for the runner to run now, or "" (none, or taken already). */
export async function claimSetup(state: StateStore, replId: string): Promise<{ command: string; repl?: ReplRecord }> {
  const r = await state.claimSetup(replId);
  return r?.setup ? { command: r.setup.command, repl: r } : { command: "" };
}

/** How the claimed command ended; a report for a setup that is not running changes nothing. */
export function endedSetup(r: ReplRecord, exitCode: number, message: string): SetupRecord | undefined {
  if (r.setup?.status !== "running") return undefined;
  return {
    command: r.setup.command,
    status: exitCode === 0 ? "succeeded" : "failed",
    exitCode,
    ...(message ? { message } : {}),
  };
}

/** A setup left "running" by a runner that is gone. */
export const interruptedSetup = (r: ReplRecord): SetupRecord | undefined =>
  r.setup?.status === "running"
    ? { command: r.setup.command, status: "failed", exitCode: -1, message: "the repl stopped before setup ended" }
    : undefined;
