/**
 * start_repl's progress, read from core's WatchRepl while StartRepl runs: the repl starting, its
 * workspace being restored (files and bytes, as the driver reports them) and running. Progress
 * goes from 0 to 1 (restore fills most of it); each change of phase is also a log message at
 * "info", each restore step at "debug". Best effort: a watch that fails never fails the start.
 */
import type { Progress } from "../../../../gen/devex/core/v1/repl_pb.js";
import { ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../../../lib/client/clients.js";
import type { ToolReport } from "../tool-report.js";

export interface StartWatch {
  /** Resolves once the watch is open (or has failed), so that no step of the start is missed. */
  ready: Promise<void>;
  /** Reports the start done and closes the watch. */
  finish(started: boolean): Promise<void>;
}

export function watchStart(core: CoreClients, replId: string, report: ToolReport): StartWatch {
  const abort = new AbortController();
  let opened!: () => void;
  const ready = new Promise<void>((resolve) => {
    opened = resolve;
  });
  let phase = "";
  const step = (value: number, message: string, newPhase: string) => {
    report.progress(value, 1, message);
    if (newPhase !== phase) report.log("info", "start_repl", message);
    else report.log("debug", "start_repl", message);
    phase = newPhase;
  };

  const watching = (async () => {
    try {
      for await (const m of core.repls.watchRepl({ replId }, { signal: abort.signal })) {
        opened();
        if (m.progress?.phase === "restore") step(0.1 + 0.8 * fraction(m.progress), restoring(m.progress), "restore");
        else if (m.repl?.status === ReplStatus.STARTING) step(0.05, `starting repl ${replId}`, "starting");
      }
    } catch {
      // The watch ends when finish() aborts it, or fails on its own: progress is a courtesy.
    } finally {
      opened();
    }
  })();

  return {
    ready,
    async finish(started) {
      if (started) step(1, `repl ${replId} is running`, "running");
      abort.abort();
      await watching;
    },
  };
}

function fraction(p: Progress): number {
  if (p.bytesTotal > 0n) return Math.min(1, Number(p.bytesDone) / Number(p.bytesTotal));
  if (p.filesTotal > 0n) return Math.min(1, Number(p.filesDone) / Number(p.filesTotal));
  return 0;
}

function restoring(p: Progress): string {
  const mb = (n: bigint) => (Number(n) / 1e6).toFixed(1);
  return `restoring the workspace: ${p.filesDone} of ${p.filesTotal} files, ${mb(p.bytesDone)} of ${mb(p.bytesTotal)} MB`;
}
