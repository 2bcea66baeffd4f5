/**
 * The repl lifecycle as data: for each action, the states it may start from, the intermediate state
 * held while its effect runs, the state it ends in, and the state it falls back to when the effect
 * fails. The operations (start.ts, stop.ts, delete.ts) follow this table; nothing else moves a repl.
 */
import type { ReplState } from "../state/store.js";

export interface Transition {
  from: readonly ReplState[];
  via: ReplState;
  to: ReplState | "deleted";
  onFailure: ReplState;
  effect: string;
}

export const transitions = {
  start: {
    from: ["stopped"],
    via: "starting",
    to: "running",
    onFailure: "stopped",
    effect: "driver.start (runner up, workspace restored), then record the active session",
  },
  stop: {
    from: ["running"],
    via: "stopping",
    to: "stopped",
    onFailure: "running",
    effect: "driver.stop (persist the workspace, then tear down), then drop the active session",
  },
  delete: {
    from: ["stopped"],
    via: "deleting",
    to: "deleted",
    // Part of its storage may be gone (its checkpoints, its claims on its lenders' content), so it
    // is never started again: it stays deleting, with the error, until a DeleteRepl finishes it.
    onFailure: "deleting",
    effect: "delete the workspace prefix, then the records (a running repl is stopped first)",
  },
} as const satisfies Record<string, Transition>;

export type Action = keyof typeof transitions;

/** States that only exist while an operation holds the repl's lock (and deleting after a failed delete). */
export const intermediate: readonly ReplState[] = ["starting", "stopping", "deleting"];
