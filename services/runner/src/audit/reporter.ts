/**
 * Sends the runner's audit events to core (RunnerControlService.ReportAudit) in batches, every
 * `flushIntervalMs` (2 s) and at close, so recording never waits on core. File changes are
 * coalesced: within one interval, repeated changes of one path by one credential are one event with
 * a `count`, and past MAX_PATHS distinct paths the rest are one event per RPC with `path: "(more)"`
 * and a count. So an agent writing 10,000 files in a second adds a few hundred events, not 10,000.
 * While core cannot be reached, events wait (at most MAX_PENDING; past it they are dropped, counted
 * and logged); a batch core refuses outright (its repl deleted) is dropped. A runner without core
 * (no CoreLink) has no reporter and records nothing.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type RunnerAuditEvent,
  RunnerAuditEventSchema,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import { runnerControlClientFor } from "../../../../lib/client/node.js";
import type { Logger } from "../../../../lib/kit/log.js";

/** Answers that sending the same batch again cannot change. */
const refused = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.NotFound, Code.FailedPrecondition]);
/** Most events per ReportAudit (core's limit). */
const BATCH = 200;
const MAX_PENDING = 2_000;
/** Distinct paths per interval before file changes are folded into one event per RPC. */
const MAX_PATHS = 100;

export interface AuditEntry {
  time: number;
  userId: string;
  tokenId: string;
  clientAddress: string;
  rpc: string;
  outcome: string;
  message: string;
  details: Record<string, string>;
}

export interface AuditReporterDeps {
  client: Pick<RunnerControlClient, "reportAudit">;
  replId: string;
  runnerId: string;
  log: Logger;
  flushIntervalMs?: number;
}

interface Pending {
  entry: AuditEntry;
  count: number;
}

export class AuditReporter {
  private pending: Pending[] = [];
  /** This interval's file changes by credential, RPC, outcome and path. */
  private fileChanges = new Map<string, Pending>();
  private paths = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;

  constructor(private readonly d: AuditReporterDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.d.flushIntervalMs ?? 2000);
    this.timer.unref();
  }

  /** Queues an event; a file change (`fileChange`) may be folded into one already queued. */
  add(entry: AuditEntry, fileChange = false): void {
    if (fileChange) this.addFileChange(entry);
    else this.push({ entry, count: 1 });
  }

  private addFileChange(entry: AuditEntry) {
    const who = [entry.userId, entry.tokenId, entry.rpc, entry.outcome].join("\0");
    const key = `${who}\0${entry.details.path ?? ""}\0${entry.details.destination ?? ""}`;
    const same =
      this.fileChanges.get(key) ?? (this.paths >= MAX_PATHS ? this.fileChanges.get(`${who}\0(more)`) : undefined);
    if (same) {
      same.count++;
      same.entry.details.count = String(same.count);
      return;
    }
    const folded = this.paths >= MAX_PATHS;
    const p = { entry: folded ? { ...entry, details: { path: "(more)", count: "1" } } : entry, count: 1 };
    // Only a queued event takes later changes of its path: one dropped (the queue full) would lose them.
    if (!this.push(p)) return;
    if (!folded) this.paths++;
    this.fileChanges.set(folded ? `${who}\0(more)` : key, p);
  }

  /** Sends what is queued (one send at a time); failures keep the events for the next try. */
  flush(): Promise<void> {
    this.sending ??= this.send().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  /** Stops the timer and sends what is left, giving up after `timeoutMs`. */
  async close(timeoutMs = 2000): Promise<void> {
    clearInterval(this.timer);
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Queues `p` unless MAX_PENDING wait already; whether it was queued. */
  private push(p: Pending): boolean {
    if (this.pending.length >= MAX_PENDING) {
      if (this.dropped++ % 100 === 0)
        this.d.log.warn({ dropped: this.dropped }, "audit events not sent to core: dropping");
      return false;
    }
    this.pending.push(p);
    return true;
  }

  private async send(): Promise<void> {
    // A new interval: later changes of the same paths are new events.
    this.fileChanges.clear();
    this.paths = 0;
    while (this.pending.length) {
      const batch = this.pending.slice(0, BATCH);
      try {
        await this.d.client.reportAudit({
          replId: this.d.replId,
          runnerId: this.d.runnerId,
          events: batch.map((p) => toProto(p.entry)),
        });
        this.pending.splice(0, batch.length);
      } catch (err) {
        const message = (err as Error).message;
        if (!refused.has(ConnectError.from(err).code)) {
          this.d.log.warn({ err: message, events: this.pending.length }, "audit report to core failed; retrying");
          return;
        }
        // Core will never take this batch (its repl was deleted, it refuses an event): drop it, not the rest.
        this.d.log.warn({ err: message, events: batch.length }, "core refused audit events; dropped");
        this.pending.splice(0, batch.length);
      }
    }
  }
}

function toProto(e: AuditEntry): RunnerAuditEvent {
  return create(RunnerAuditEventSchema, { ...e, time: timestampFromMs(e.time) });
}

/** The reporter of a runner that has a core to report to (its CoreLink), started; else undefined. */
export function startAuditReporter(
  core: { url: string; socketPath?: string; runnerId: string; controlToken: string } | undefined,
  replId: string,
  log: Logger,
  client = core && runnerControlClientFor(core.url, { token: core.controlToken, socketPath: core.socketPath }),
): AuditReporter | undefined {
  if (!core || !client) return undefined;
  const reporter = new AuditReporter({ client, replId, runnerId: core.runnerId, log });
  reporter.start();
  return reporter;
}
