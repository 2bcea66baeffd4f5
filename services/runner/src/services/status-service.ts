/** StatusService: the runner's own state; calling it is not activity. */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { GetStatusResponseSchema, type StatusService } from "../../../../gen/devex/runner/v1/status_pb.js";
import type { ActivityTracker } from "../activity.js";
import type { ProcessRegistry } from "../processes/registry.js";
import type { TerminalRegistry } from "../terminals/registry.js";

export const RUNNER_VERSION = "0.1.0";

export interface StatusDeps {
  replId: string;
  startTime: number;
  idleTimeoutMs: number;
  activity: ActivityTracker;
  terminals: TerminalRegistry;
  processes: ProcessRegistry;
  /** DEVEX_RUNNER_COMMAND_PREFIX: what user commands start inside. */
  commandPrefix?: string[];
}

/** "bubblewrap" when the command prefix runs bwrap, else the prefix's first program, else "none". */
export function isolationOf(prefix: string[]): string {
  const programs = prefix.map((a) => a.split("/").pop() ?? a);
  if (programs.includes("bwrap")) return "bubblewrap";
  return programs[0] ?? "none";
}

export function createStatusService(d: StatusDeps): ServiceImpl<typeof StatusService> {
  return {
    async getStatus() {
      return create(GetStatusResponseSchema, {
        replId: d.replId,
        startTime: timestampFromMs(d.startTime),
        lastActivityTime: timestampFromMs(d.activity.lastActivity),
        idleTimeout: durationFromMs(d.idleTimeoutMs),
        terminals: d.terminals.running,
        processes: d.processes.running,
        streams: d.activity.streams,
        isolation: isolationOf(d.commandPrefix ?? []),
        version: RUNNER_VERSION,
      });
    },
  };
}
