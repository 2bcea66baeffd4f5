/**
 * Progress of start_repl and stop_repl, read from core's WatchRepl while StartRepl or StopRepl
 * runs: the repl starting (or stopping), its workspace being restored (or persisted: files and
 * bytes, as the driver reports them), and running (or stopped). Progress goes from 0 to 1, the
 * transfer filling most of it; each change of phase is also a log message at "info", each transfer
 * step at "debug". Best effort: a watch that fails never fails the call.
 */
import type { Progress } from "../../../../gen/devex/core/v1/repl_pb.js";
import { ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../../../lib/client/clients.js";
import type { ToolReport } from "../tool-report.js";

export type Lifecycle = "start" | "stop";

const words = {
  start: { status: ReplStatus.STARTING, begins: "starting", transfer: "restore", moving: "restoring", ends: "running" },
  stop: { status: ReplStatus.STOPPING, begins: "stopping", transfer: "persist", moving: "saving", ends: "stopped" },
} as const;

export interface LifecycleWatch {
  /** Resolves once the watch is open (or has failed), so that no step of the call is missed. */
  ready: Promise<void>;
  /** Reports the call done (when it succeeded) and closes the watch. */
  finish(succeeded: boolean): Promise<void>;
}

export function watchLifecycle(core: CoreClients, replId: string, report: ToolReport, what: Lifecycle): LifecycleWatch {
  const w = words[what];
  const abort = new AbortController();
  let opened!: () => void;
  const ready = new Promise<void>((resolve) => {
    opened = resolve;
  });
  let phase = "";
  const step = (value: number, message: string, newPhase: string) => {
    report.progress(value, 1, message);
    report.log(newPhase !== phase ? "info" : "debug", `${what}_repl`, message);
    phase = newPhase;
  };

  const watching = (async () => {
    try {
      for await (const m of core.repls.watchRepl({ replId }, { signal: abort.signal })) {
        opened();
        if (m.progress?.phase === w.transfer)
          step(0.1 + 0.8 * fraction(m.progress), transferring(w.moving, m.progress), w.transfer);
        else if (m.repl?.status === w.status) step(0.05, `${w.begins} repl ${replId}`, w.begins);
      }
    } catch {
      // The watch ends when finish() aborts it, or fails on its own: progress is a courtesy.
    } finally {
      opened();
    }
  })();

  return {
    ready,
    async finish(succeeded) {
      if (succeeded) step(1, `repl ${replId} is ${w.ends}`, w.ends);
      abort.abort();
      await watching;
    },
  };
}

/** Watches only when the client will hear of it: it sent a progress token or logs at info. */
export async function withLifecycleProgress<T>(
  core: CoreClients,
  replId: string,
  report: ToolReport,
  what: Lifecycle,
  call: () => Promise<T>,
): Promise<T> {
  const watch = report.wantsProgress || report.logs("info") ? watchLifecycle(core, replId, report, what) : undefined;
  if (watch) await within(watch.ready, READY_WAIT_MS); // a slow watch costs some progress, never the call

  let succeeded = false;
  try {
    const result = await call();
    succeeded = true;
    return result;
  } finally {
    await watch?.finish(succeeded);
  }
}

/** How long a call waits for its watch to open before going ahead without it. */
const READY_WAIT_MS = 2_000;

async function within(p: Promise<void>, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function fraction(p: Progress): number {
  if (p.bytesTotal > 0n) return Math.min(1, Number(p.bytesDone) / Number(p.bytesTotal));
  if (p.filesTotal > 0n) return Math.min(1, Number(p.filesDone) / Number(p.filesTotal));
  return 0;
}

function transferring(moving: string, p: Progress): string {
  const mb = (n: bigint) => (Number(n) / 1e6).toFixed(1);
  return `${moving} the workspace: ${p.filesDone} of ${p.filesTotal} files, ${mb(p.bytesDone)} of ${mb(p.bytesTotal)} MB`;
}
