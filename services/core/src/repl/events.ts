/**
 * In-process notifications of repl changes, so WatchRepl streams a change at once. Watchers also poll
 * the state store, which covers changes made by other core processes.
 */
import { EventEmitter } from "node:events";
import type { DriverProgress } from "../driver/driver.js";
import type { ReplRecord } from "../state/store.js";

export interface ReplEvent {
  repl: ReplRecord | undefined;
  progress?: DriverProgress;
}

export interface ReplEvents {
  publish(replId: string, event: ReplEvent): void;
  subscribe(replId: string, listener: (event: ReplEvent) => void): () => void;
}

export function createReplEvents(): ReplEvents {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish: (replId, event) => emitter.emit(replId, event),
    subscribe(replId, listener) {
      emitter.on(replId, listener);
      return () => emitter.off(replId, listener);
    },
  };
}
