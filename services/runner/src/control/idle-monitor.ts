/**
 * Tells core the runner is alive (Heartbeat, at the interval core asks for) and, once it has been
 * idle past the idle timeout, that it is idle (ReportIdle, once per idle period). A heartbeat's
 * answer may carry a renewed control credential, which it hands on. The control
 * client is any RunnerControlService client; the clock and timers are injectable for tests.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type RunnerActivity, RunnerActivitySchema } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { ActivityTracker } from "../activity.js";

export interface IdleMonitorDeps {
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  activity: ActivityTracker;
  counts: () => { terminals: number; processes: number };
  idleTimeoutMs: number;
  heartbeatIntervalMs: number;
  log: Logger;
  /** How often idleness is checked (default: a quarter of the idle timeout, at most 10 s). */
  checkIntervalMs?: number;
  /** Core no longer knows this runner. */
  onUnknownRunner?: () => void;
  /** Core renewed the control credential: every later call to core carries this one. */
  onControlToken?: (token: string) => void;
}

export class IdleMonitor {
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  /** lastActivity of the idle period already reported, so each period is reported once. */
  private reportedFor: number | undefined;
  private stopped = false;

  constructor(private readonly d: IdleMonitorDeps) {}

  start(): void {
    const check = this.d.checkIntervalMs ?? Math.min(10_000, Math.max(100, this.d.idleTimeoutMs / 4));
    this.checkTimer = setInterval(() => void this.checkIdle(), check);
    this.checkTimer.unref();
    void this.heartbeat();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.checkTimer);
    clearTimeout(this.heartbeatTimer);
  }

  private snapshot(): RunnerActivity {
    return create(RunnerActivitySchema, {
      lastActivityTime: timestampFromMs(this.d.activity.lastActivity),
      ...this.d.counts(),
      streams: this.d.activity.streams,
    });
  }

  async heartbeat(): Promise<void> {
    let next = this.d.heartbeatIntervalMs;
    try {
      const res = await this.d.client.heartbeat({
        replId: this.d.replId,
        runnerId: this.d.runnerId,
        activity: this.snapshot(),
      });
      if (res.interval) next = Math.max(1000, Number(res.interval.seconds) * 1000 + res.interval.nanos / 1e6);
      if (res.controlToken) this.d.onControlToken?.(res.controlToken);
      if (res.unknownRunner) {
        this.d.log.warn("core no longer knows this runner: draining");
        this.d.onUnknownRunner?.();
      }
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, "heartbeat to core failed; retrying");
      next = Math.min(next, 5000);
    }
    if (this.stopped) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), next);
    this.heartbeatTimer.unref();
  }

  /** Reports idleness when the idle timeout has passed and this idle period was not reported yet. */
  async checkIdle(): Promise<boolean> {
    const idleFor = this.d.activity.idleFor();
    const last = this.d.activity.lastActivity;
    if (idleFor < this.d.idleTimeoutMs || this.reportedFor === last) return false;
    this.reportedFor = last;
    try {
      const res = await this.d.client.reportIdle({
        replId: this.d.replId,
        runnerId: this.d.runnerId,
        activity: this.snapshot(),
        idleFor: durationFromMs(idleFor),
      });
      this.d.log.info({ idleForMs: idleFor, stopping: res.stopping }, "reported idle to core");
      return true;
    } catch (err) {
      this.reportedFor = undefined; // try again at the next check
      this.d.log.warn({ err: (err as Error).message }, "idle report to core failed");
      return false;
    }
  }
}
