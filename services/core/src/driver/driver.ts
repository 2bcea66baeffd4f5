/**
 * The runtime driver: how core gets a runner for a repl. Implementations: local processes
 * (local/) and Kubernetes (kubernetes/); DEVEX_DRIVER=none has the one below; tests use an
 * in-process double.
 *
 * Concurrency rules:
 * - Core calls `start` and `stop` for one repl only while holding that repl's lock, so a driver never
 *   sees two lifecycle calls for the same repl at once. Calls for different repls run concurrently.
 * - `start` is told the runner id core chose and the credential the runner uses to call
 *   RunnerControlService. If it fails, nothing may keep running (the driver cleans up after itself).
 * - `stop` persists the workspace first, then tears the runner down. If persisting fails it throws
 *   and leaves the runner running, so no file is lost; core then reports Unavailable.
 *   Stopping a runner that no longer exists succeeds.
 * - `persist` saves a running runner's trees now, as a stop's first step does, and leaves it running
 *   (a checkpoint of a running repl follows it); core calls it holding the repl's lock.
 * - `status` and `list` only read; `list` serves reconciliation (runners no repl knows about).
 * - Every call honours its AbortSignal.
 */
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import { failedPrecondition } from "../../../../lib/kit/errors.js";

export interface DriverRepl {
  replId: string;
  owner: string;
  /** Blob-store prefix of the workspace, e.g. "repl/alice/r1234/". */
  workspacePrefix: string;
  /** Blob-store prefix of the repl's home, e.g. "home/alice/r1234/" (absent or "": not persisted). */
  homePrefix?: string;
}

export interface StartRequest extends DriverRepl {
  /** The id core assigned to this runner. */
  runnerId: string;
  /** The runner's credential for RunnerControlService (aud "runner-control"). */
  controlToken: string;
  /** Where the runner reaches core's RunnerControlService. */
  coreUrl: string;
  /** The egress policy the runner starts under (the repl's effective one, resolved by core); absent: allow_all. */
  egress?: EgressPolicy;
}

export interface StartedRunner {
  runnerId: string;
  /** Base URL of the runner's API as clients reach it. */
  url: string;
}

export interface StopRequest extends DriverRepl {
  runnerId: string;
  reason: string;
  /** False when the workspace must not be persisted (its repl was deleted); defaults to true. */
  persist?: boolean;
}

export interface PersistRequest extends DriverRepl {
  runnerId: string;
}

export interface StopResult {
  /** When the workspace was persisted (ms since the epoch). */
  persistTime: number;
}

export interface DriverProgress {
  phase: string;
  filesDone?: number;
  filesTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
}

export type RunnerStatus = "running" | "stopped";

export interface RunnerInfo {
  runnerId: string;
  replId: string;
  url: string;
}

/** A new egress policy for a running repl's runner. */
export interface EgressChange {
  replId: string;
  runnerId: string;
  egress: EgressPolicy;
}

export interface Driver {
  start(req: StartRequest, signal: AbortSignal, progress?: (p: DriverProgress) => void): Promise<StartedRunner>;
  stop(req: StopRequest, signal: AbortSignal, progress?: (p: DriverProgress) => void): Promise<StopResult>;
  /** Fails with Unavailable when the trees could not be saved; a runner that is gone is FailedPrecondition. */
  persist(req: PersistRequest, signal: AbortSignal, progress?: (p: DriverProgress) => void): Promise<StopResult>;
  status(runnerId: string, signal: AbortSignal): Promise<RunnerStatus>;
  list(signal: AbortSignal): Promise<RunnerInfo[]>;
  /** Applies a new egress policy to a running runner within a second; a runner that is gone is not an error. */
  setEgress(change: EgressChange, signal: AbortSignal): Promise<void>;
  /** Why this driver's repls do not run under their egress policies; undefined when they do. */
  readonly egressNotEnforced?: string;
  /**
   * The URL below which the driver serves each repl's previews on an origin of its own
   * (`<replId>.<its host>`, repl/preview-origin.ts); undefined: below the runner's URL.
   */
  readonly previewUrl?: string;
}

/** DEVEX_DRIVER=none (a core that only serves its API, e.g. the API benchmark): every start fails clearly. */
export function createUnconfiguredDriver(): Driver {
  const fail = async (): Promise<never> => {
    throw failedPrecondition("no runtime driver configured: this core cannot start repls yet");
  };
  return {
    start: fail,
    stop: async () => ({ persistTime: Date.now() }),
    persist: fail,
    status: async () => "stopped",
    list: async () => [],
    setEgress: async () => {},
  };
}
