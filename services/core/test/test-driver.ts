/**
 * TEST DOUBLE — not the thing under test. An in-process Driver that keeps "runners" in a map and
 * records every call, so core's lifecycle (locking, transitions, rollback) can be tested without a
 * runtime. Delays and failures are switchable per test.
 */
import { failedPrecondition, unavailable } from "../../../lib/kit/errors.js";
import { sleep } from "../../../lib/kit/sleep.js";
import type { Driver, EgressChange, PersistRequest, StartRequest, StopRequest } from "../src/driver/driver.js";

export interface TestDriver extends Driver {
  readonly starts: StartRequest[];
  readonly stops: StopRequest[];
  readonly persists: PersistRequest[];
  /** Every setEgress call, in order. */
  readonly egressChanges: EgressChange[];
  readonly runners: Map<string, { replId: string; url: string }>;
  startDelayMs: number;
  stopDelayMs: number;
  failStart: boolean;
  failPersist: boolean;
  /** setEgress fails with a plain Error, as an unexpected backend failure would. */
  failSetEgress: boolean;
}

export function createTestDriver(): TestDriver {
  const driver: TestDriver = {
    starts: [],
    stops: [],
    persists: [],
    egressChanges: [],
    runners: new Map(),
    startDelayMs: 0,
    stopDelayMs: 0,
    failStart: false,
    failPersist: false,
    failSetEgress: false,
    async start(req, signal, progress) {
      driver.starts.push(req);
      progress?.({ phase: "restore", filesDone: 0, filesTotal: 3 });
      await sleep(driver.startDelayMs);
      signal.throwIfAborted();
      if (driver.failStart) throw unavailable("test driver: no capacity");
      const url = `http://runner.test/${req.runnerId}/`;
      driver.runners.set(req.runnerId, { replId: req.replId, url });
      progress?.({ phase: "restore", filesDone: 3, filesTotal: 3 });
      return { runnerId: req.runnerId, url };
    },
    async stop(req, _signal, progress) {
      driver.stops.push(req);
      progress?.({ phase: "persist", filesDone: 0 });
      await sleep(driver.stopDelayMs);
      if (driver.failPersist && req.persist !== false)
        throw unavailable("test driver: persisting the workspace failed");
      driver.runners.delete(req.runnerId);
      return { persistTime: Date.now() };
    },
    async persist(req) {
      driver.persists.push(req);
      if (!driver.runners.has(req.runnerId)) throw failedPrecondition("test driver: the runner is gone");
      if (driver.failPersist) throw unavailable("test driver: persisting the workspace failed");
      return { persistTime: Date.now() };
    },
    async status(runnerId) {
      return driver.runners.has(runnerId) ? "running" : "stopped";
    },
    async setEgress(change, signal) {
      driver.egressChanges.push(change);
      signal.throwIfAborted();
      if (driver.failSetEgress) throw new Error("test driver: nft: Could not process rule: No such file or directory");
    },
    async list() {
      return [...driver.runners].map(([runnerId, r]) => ({ runnerId, ...r }));
    },
  };
  return driver;
}
