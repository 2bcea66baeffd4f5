/** ProcessService: Exec (streamed, batched output) and background processes. */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type ExecResponse,
  ExecResponseSchema,
  ExecStartedSchema,
  KillProcessResponseSchema,
  ListProcessesResponseSchema,
  type Process,
  ProcessExitSchema,
  ProcessSchema,
  type ProcessService,
  ReadProcessOutputResponseSchema,
  StartProcessResponseSchema,
} from "../../../../gen/devex/runner/v1/process_pb.js";
import { AsyncQueue } from "../../../../lib/kit/async-queue.js";
import { killGroup } from "../../../../lib/kit/pids.js";
import { type BackgroundProcess, LINGER_MS, type ProcessRegistry } from "../processes/registry.js";
import { exitInfo, waitExit } from "../processes/spawn.js";

export interface ProcessServiceDeps {
  processes: ProcessRegistry;
  /** Exec timeout when the request sets none. */
  defaultTimeoutMs?: number;
}

const BATCH_MS = 5;
const BATCH_BYTES = 64 * 1024;
/** Queued output above which the command's pipes are paused until the client catches up. */
const MAX_QUEUED = 1024 * 1024;
const KILL_GRACE_MS = 1000;
const DEFAULT_READ = 64 * 1024;

export function processProto(p: BackgroundProcess): Process {
  return create(ProcessSchema, {
    processId: p.id,
    name: p.name,
    command: p.spec,
    pid: p.pid,
    running: !p.exit,
    startTime: timestampFromMs(p.startTime),
    endTime: p.endTime ? timestampFromMs(p.endTime) : undefined,
    exit: p.exit ? create(ProcessExitSchema, p.exit) : undefined,
    outputBytes: BigInt(p.output.total),
  });
}

export function createProcessService({
  processes,
  defaultTimeoutMs = 10 * 60_000,
}: ProcessServiceDeps): ServiceImpl<typeof ProcessService> {
  return {
    async *exec(req, ctx) {
      const { child, release } = await processes.spawnExec(req.command!);
      const pid = child.pid!;
      const streams = [child.stdout!, child.stderr!];
      const queue = new AsyncQueue<ExecResponse["event"]>(() => {
        if (queue.bytes < MAX_QUEUED / 2) for (const s of streams) s.resume();
      });
      let batch: { kind: "stdout" | "stderr"; chunks: Buffer[]; bytes: number } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (!batch) return;
        const value = Buffer.concat(batch.chunks, batch.bytes);
        queue.push({ case: batch.kind, value }, value.length);
        batch = undefined;
        if (queue.bytes > MAX_QUEUED) for (const s of streams) s.pause();
      };
      const collect = (kind: "stdout" | "stderr") => (d: Buffer) => {
        if (batch && batch.kind !== kind) flush();
        batch ??= { kind, chunks: [], bytes: 0 };
        batch.chunks.push(d);
        batch.bytes += d.length;
        if (batch.bytes >= BATCH_BYTES) flush();
        else timer ??= setTimeout(flush, BATCH_MS);
      };
      child.stdout!.on("data", collect("stdout"));
      child.stderr!.on("data", collect("stderr"));

      let timedOut = false;
      const timeoutMs = req.timeout
        ? Number(req.timeout.seconds) * 1000 + Math.ceil(req.timeout.nanos / 1e6)
        : defaultTimeoutMs;
      const terminate = () => {
        killGroup(pid, "SIGTERM");
        setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS).unref();
      };
      const deadline = setTimeout(() => {
        timedOut = true;
        terminate();
      }, timeoutMs);
      const onCancel = () => killGroup(pid, "SIGKILL");
      ctx.signal.addEventListener("abort", onCancel, { once: true });

      child.stdin!.end(req.stdin);
      void waitExit(child, LINGER_MS).then(({ code, signal }) => {
        clearTimeout(deadline);
        flush();
        queue.push({ case: "exit", value: create(ProcessExitSchema, exitInfo(code, signal, timedOut)) });
        queue.end();
      });
      try {
        yield create(ExecResponseSchema, { event: { case: "started", value: create(ExecStartedSchema, { pid }) } });
        for await (const event of queue.drain(ctx.signal)) yield create(ExecResponseSchema, { event });
      } finally {
        clearTimeout(deadline);
        if (timer) clearTimeout(timer);
        ctx.signal.removeEventListener("abort", onCancel);
        if (child.exitCode === null && child.signalCode === null) killGroup(pid, "SIGKILL");
        release();
      }
    },

    async startProcess(req) {
      const p = await processes.start(req.command!, req.name);
      return create(StartProcessResponseSchema, { process: processProto(p) });
    },

    async listProcesses() {
      return create(ListProcessesResponseSchema, { processes: processes.list().map(processProto) });
    },

    async readProcessOutput(req) {
      const p = processes.get(req.processId);
      const max = req.maxBytes || DEFAULT_READ;
      const out = p.output;
      const from = req.tail ? Math.max(out.firstOffset, out.total - max) : Number(req.offset);
      const { data, offset } = out.read(from, max);
      return create(ReadProcessOutputResponseSchema, {
        data,
        offset: BigInt(offset),
        nextOffset: BigInt(offset + data.length),
        droppedBytes: BigInt(out.firstOffset),
        process: processProto(p),
      });
    },

    async killProcess(req) {
      const p = processes.kill(req.processId, req.signal);
      return create(KillProcessResponseSchema, { process: processProto(p) });
    },
  };
}
