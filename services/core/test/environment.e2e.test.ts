/**
 * A repl's environment variables and secrets with real runners (the embedded setup, the default
 * sandbox): a new terminal's `env` and an exec's `printenv` show them; a change reaches the running
 * repl's new processes within a second (a terminal already open keeps what it started with); a
 * deleted one is gone. After a stop, the secret is nowhere it could leak from: not in the stored
 * workspace or home, not in any file under core's data directory (state, blobs, runner logs), not in
 * core's own log at debug level.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { type Embedded, runInTerminal, runnerRecordOf, startEmbedded } from "./embedded.js";

const SECRET = "s3cret-Value-that-must-not-leak";

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("repl environment variables and secrets in real runners", function () {
  this.timeout(90_000);
  let e: Embedded;
  const logLines: string[] = [];

  before(async () => {
    e = await startEmbedded({ poolSize: 1, logLines });
  });
  after(() => e?.close());

  it("terminals and commands get them, changes reach new processes, and the secret leaks nowhere", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "env", template: "node" });
    const replId = repl!.replId;
    await core.repls.setEnvironmentVariable({ replId, name: "MODE", value: "dev mode" });
    await core.repls.setEnvironmentVariable({ replId, name: "API_KEY", value: SECRET, secret: true });
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = e.runner(access!);
    const printenv = async (name: string) => {
      let out = "";
      let code = -1;
      for await (const m of runner.processes.exec({ command: { argv: ["printenv", name] } })) {
        if (m.event.case === "stdout") out += Buffer.from(m.event.value).toString();
        if (m.event.case === "exit") code = m.event.value.exitCode;
      }
      return code === 0 ? out.trim() : undefined;
    };
    // At once after the start: a process started before core's first message waits for it.
    const { terminal } = await runner.terminals.createTerminal({});
    assert.equal(await printenv("API_KEY"), SECRET);
    assert.equal(await printenv("MODE"), "dev mode");

    const shown = await runInTerminal(runner, terminal!.terminalId, "env | grep -E '^(MODE|API_KEY)=' | sort");
    assert.equal(shown.output.trim().replace(/\r/g, ""), `API_KEY=${SECRET}\nMODE=dev mode`);

    // A change while it runs: new processes get it within a second; the open terminal keeps its own.
    await core.repls.setEnvironmentVariable({ replId, name: "MODE", value: "prod" });
    await core.repls.deleteEnvironmentVariable({ replId, name: "API_KEY" });
    const changedAt = Date.now();
    while ((await printenv("MODE")) !== "prod") {
      assert.ok(Date.now() - changedAt < 1500, "the change reached the runner within a second");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await printenv("API_KEY"), undefined, "deleted");
    const kept = await runInTerminal(runner, terminal!.terminalId, "printenv MODE");
    assert.equal(kept.output.trim(), "dev mode");

    // Set the secret again; the runner's own log (removed with its slot at the stop) must not hold it.
    await core.repls.setEnvironmentVariable({ replId, name: "API_KEY", value: SECRET, secret: true });
    while ((await printenv("API_KEY")) !== SECRET) await new Promise((r) => setTimeout(r, 50));
    const runnerLog = join(dirname((await runnerRecordOf(e, replId)).workspace), "runner.log");
    const logged = await readFile(runnerLog, "utf8");
    assert.ok(logged.length > 0, "the runner logged");
    assert.ok(!logged.includes(SECRET), "the runner's log holds the secret");
    // Stopped and persisted, it must be nowhere.
    await core.repls.stopRepl({ replId });
    for (const prefix of [`repl/alice/${replId}/`, `home/alice/${replId}/`]) {
      for (const [path, content] of await readStoredWorkspace(e.blobs, prefix)) {
        assert.ok(!content.includes(SECRET), `${prefix}${path} holds the secret`);
      }
    }
    for (const file of await filesUnder(e.dir)) {
      const content = await readFile(file).catch(() => Buffer.alloc(0));
      assert.ok(!content.includes(SECRET), `${file} holds the secret`);
    }
    assert.ok(logLines.length > 10, "core logged at debug level");
    assert.ok(!logLines.join("\n").includes(SECRET), "core's log holds the secret");
  });
});
