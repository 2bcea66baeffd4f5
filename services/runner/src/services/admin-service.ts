/** RunnerAdminService (core → runner): Flush and Drain. */
import { execFile } from "node:child_process";
import { open } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DrainResponseSchema,
  FlushResponseSchema,
  type RunnerAdminService,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { ProcessRegistry } from "../processes/registry.js";
import type { TerminalRegistry } from "../terminals/registry.js";
import type { Workspace } from "../workspace/paths.js";
import { walk } from "../workspace/walk.js";

export interface AdminDeps {
  workspace: Workspace;
  terminals: TerminalRegistry;
  processes: ProcessRegistry;
  log: Logger;
  /** Refuse new work from now on, with this reason. */
  startDraining(reason: string): void;
}

/** Counts the workspace's files and bytes, and syncs it to disk (syncfs via `sync -f`, else fsync each file). */
export async function flushWorkspace(ws: Workspace): Promise<{ files: number; bytes: number }> {
  const synced = await new Promise<boolean>((resolve) =>
    execFile("sync", ["-f", ws.root], { timeout: 60_000 }, (err) => resolve(!err)),
  );
  let files = 0;
  let bytes = 0;
  for await (const e of walk(ws.root, "", { maxDepth: 1000, exclude: [], includeHidden: true })) {
    if (!e.stats.isFile()) continue;
    files++;
    bytes += Number(e.stats.size);
    if (!synced) {
      const fh = await open(e.abs, "r").catch(() => undefined);
      await fh?.sync().catch(() => {});
      await fh?.close();
    }
  }
  return { files, bytes };
}

export function createAdminService(d: AdminDeps): ServiceImpl<typeof RunnerAdminService> {
  return {
    async flush() {
      return create(FlushResponseSchema, toCounts(await flushWorkspace(d.workspace)));
    },
    async drain(req) {
      const reason = req.reason || "the repl is stopping";
      d.startDraining(reason);
      const graceMs = req.gracePeriod
        ? Number(req.gracePeriod.seconds) * 1000 + Math.ceil(req.gracePeriod.nanos / 1e6)
        : 2000;
      const [terminalsClosed, processesKilled] = await Promise.all([
        d.terminals.closeAll(graceMs),
        d.processes.killAll(graceMs),
      ]);
      const counts = await flushWorkspace(d.workspace);
      d.log.info({ reason, terminalsClosed, processesKilled, ...counts }, "drained");
      return create(DrainResponseSchema, { terminalsClosed, processesKilled });
    },
  };
}

function toCounts(c: { files: number; bytes: number }) {
  return { files: BigInt(c.files), bytes: BigInt(c.bytes) };
}
