/** Orphaned runners (no active session points at them) are stopped; live ones are left alone. */
import assert from "node:assert/strict";
import { startTestCore, type TestCore } from "./harness.js";

describe("reconciliation of orphaned runners", () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore({ quota: 10, reconcileIntervalMs: 0 });
  });
  after(() => t?.close());

  it("stops runners of lost sessions and deleted repls, keeps the serving one", async () => {
    const c = t.clients({ bearer: await t.token("rita") });
    const live = (await c.repl.createRepl({ name: "live", template: "node" })).repl!.replId;
    const lost = (await c.repl.createRepl({ name: "lost", template: "node" })).repl!.replId;
    await c.repl.startRepl({ replId: live });
    // A runner left behind for an existing repl (say, by a core that crashed before recording it) ...
    t.driver.runners.set("run-stray", { replId: lost, url: "http://runner.test/run-stray/" });
    // ... and one whose repl no longer exists.
    t.driver.runners.set("run-ghost", { replId: "rgone", url: "http://runner.test/run-ghost/" });

    assert.equal(await t.core.reconcile(), 2);
    assert.deepEqual([...t.driver.runners.keys()], [t.driver.starts.at(-1)!.runnerId]);
    const stray = t.driver.stops.find((s) => s.runnerId === "run-stray")!;
    assert.equal(stray.persist, true);
    assert.equal(stray.workspacePrefix, `repl/rita/${lost}/`);
    const ghost = t.driver.stops.find((s) => s.runnerId === "run-ghost")!;
    assert.equal(ghost.persist, false, "nothing to persist for a deleted repl");
    assert.equal(await t.core.reconcile(), 0);
  });
});
