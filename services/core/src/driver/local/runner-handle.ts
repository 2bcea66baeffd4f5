/**
 * What the local driver holds of one assigned runner: its record, its folder, its process (absent
 * when re-adopted from a previous core) and the queue its persists, stop and removal run on, one at
 * a time.
 */
import type { ChildProcess } from "node:child_process";
import type { TreeWatch } from "../../../../../lib/sync/sync.js";
import type { ReplNetwork } from "./network/repl-network.js";
import type { RunnerRecord } from "./pool.js";
import { pinnedPath } from "./runner-folder.js";

/** Where a runner answers: its URL, and the Unix socket to connect to instead of the URL's host:port. */
export interface RunnerTarget {
  url: string;
  socketPath?: string;
}

export type AssignedRecord = RunnerRecord & {
  runnerId: string;
  replId: string;
  workspace: string;
  port: number;
  owner: string;
};

export interface Handle {
  record: AssignedRecord;
  dir: string;
  child?: ChildProcess;
  timer?: NodeJS.Timeout;
  /** Serialises persist and stop for this runner. */
  queue: Promise<unknown>;
  lastPersist?: number;
  gone: boolean;
  /** The runner's socket, pinned (runner-folder.ts); undefined on TCP. */
  socketFd?: number;
  /** Its way out (network/repl-network.ts); undefined without outbound network. */
  network?: ReplNetwork;
  /** Its trees' watches (lib/sync TreeWatch), made by the first watched persist, closed on release. */
  watches?: { workspace: TreeWatch; home?: TreeWatch };
}

export function newHandle(record: AssignedRecord, dir: string, child?: ChildProcess): Handle {
  return { record, dir, child, queue: Promise.resolve(), gone: false };
}

/** Runs `fn` after whatever else this runner is doing (persist or stop). */
export function serial<T>(h: Handle, fn: () => Promise<T>): Promise<T> {
  const run = h.queue.then(fn, fn);
  h.queue = run.catch(() => {});
  return run;
}

export const urlOf = (h: Handle) => (h.record.socketPath ? "http://localhost" : `http://127.0.0.1:${h.record.port}`);

/** The runner's socket as core dials it: the pinned descriptor, never the path in its folder. */
export const socketOf = (h: Handle) => (h.socketFd === undefined ? undefined : pinnedPath(h.socketFd));

export const targetOf = (h: Handle): RunnerTarget => ({ url: urlOf(h), socketPath: socketOf(h) });
