/**
 * TEST DOUBLE — not the thing under test. An in-process Driver that keeps "runners" in a map and
 * records every call, so core's lifecycle (locking, transitions, rollback) can be tested without a
 * runtime. Delays and failures are switchable per test.
 */
import { unavailable } from "../../../lib/kit/errors.js";
import { sleep } from "../../../lib/kit/sleep.js";
import type { Driver, StartRequest, StopRequest } from "../src/driver/driver.js";

export interface TestDriver extends Driver {
  readonly starts: StartRequest[];
  readonly stops: StopRequest[];
  readonly runners: Map<string, { replId: string; url: string }>;
  startDelayMs: number;
  stopDelayMs: number;
  failStart: boolean;
  failPersist: boolean;
}

export function createTestDriver(): TestDriver {
  const driver: TestDriver = {
    starts: [],
    stops: [],
    runners: new Map(),
    startDelayMs: 0,
    stopDelayMs: 0,
    failStart: false,
    failPersist: false,
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
    async status(runnerId) {
      return driver.runners.has(runnerId) ? "running" : "stopped";
    },
    async list() {
      return [...driver.runners].map(([runnerId, r]) => ({ runnerId, ...r }));
    },
  };
  return driver;
}
