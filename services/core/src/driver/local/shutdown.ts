/**
 * Ctrl-C in the embedded setup: persist and stop every local runner, then record those repls as
 * stopped (their sessions removed), so the next core start finds them stopped rather than pointing at
 * runners that are gone. A repl whose persist fails keeps its runner and stays running: the next core
 * re-adopts that runner.
 */
import type { Logger } from "../../../../../lib/kit/log.js";
import type { StateStore } from "../../state/store.js";
import type { LocalDriver } from "./local-driver.js";

export async function stopAllAtShutdown(local: LocalDriver, state: StateStore, log: Logger, signal: AbortSignal) {
  const results = await local.shutdown(signal);
  for (const r of results) {
    if (r.persistTime === undefined) continue;
    await state.deleteActiveSession(r.replId, r.runnerId);
    await state.transitionRepl(r.replId, ["running", "stopping"], {
      status: "stopped",
      persistTime: r.persistTime,
      updateTime: Date.now(),
      lastError: "",
    });
  }
  const saved = results.filter((r) => r.persistTime !== undefined).length;
  if (results.length) log.info({ repls: results.length, persisted: saved }, "persisted and stopped active repls");
}
