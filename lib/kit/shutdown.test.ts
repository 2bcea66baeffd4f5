/**
 * onShutdown in a real process: a repeated Ctrl-C does not abort a shutdown that is still persisting.
 * The second says what it waits for, only a third abandons, and copies of one Ctrl-C (the terminal's
 * and npm's forwarded one) count once. A service whose terminal was closed still exits.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { spawn as spawnPty } from "@lydell/node-pty";

const shutdownTs = fileURLToPath(new URL("./shutdown.ts", import.meta.url));
const logTs = fileURLToPath(new URL("./log.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A service whose only shutdown step takes `stepMs` and which is waiting for "the persist of demo". */
function serviceScript(stepMs: number, extra = "") {
  return `
    import { onShutdown } from ${JSON.stringify(shutdownTs)};
    import { createLogger } from ${JSON.stringify(logTs)};
    const log = createLogger("test", { level: "info" });
    setInterval(() => {}, 1000);
    // Shutdown logs as core's does (a line per repl persisted and stopped).
    const logLines = () => { for (let i = 0; i < 100; i++) log.info({ i }, "a shutdown step's log line"); };
    onShutdown(log, [logLines, () => new Promise((r) => setTimeout(r, ${stepMs}))], {
      waitingFor: () => "the persist of demo",
    });
    ${extra}
    process.stdout.write("ready\\n");
  `;
}

function serviceWithSlowShutdown(stepMs: number) {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", serviceScript(stepMs)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const run = { child, output: "", exit: new Promise<number | null>((r) => child.once("exit", (code) => r(code))) };
  child.stdout.on("data", (d: Buffer) => {
    run.output += d.toString();
  });
  return run;
}

/** Whether `pid` still runs (a zombie waiting to be reaped has exited). */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z/.test(stat);
}

async function waitFor(run: { output: string; child: ChildProcess }, text: string) {
  const deadline = Date.now() + 30_000;
  while (!run.output.includes(text)) {
    if (Date.now() > deadline || run.child.exitCode !== null) assert.fail(`no "${text}" in ${run.output}`);
    await sleep(20);
  }
}

describe("onShutdown (lib/kit/shutdown.ts)", function () {
  this.timeout(60_000);

  it("a second Ctrl-C says what the shutdown waits for, a third abandons it; copies of one count once", async () => {
    const run = serviceWithSlowShutdown(60_000);
    try {
      await waitFor(run, "ready");
      run.child.kill("SIGINT");
      run.child.kill("SIGTERM"); // the same Ctrl-C, forwarded by npm
      await waitFor(run, "shutting down");
      await sleep(1200);
      assert.ok(!run.output.includes("still shutting down"), "a copy of the first signal is not a second");
      run.child.kill("SIGINT");
      await waitFor(run, "still shutting down, waiting for the persist of demo; signal again to abandon");
      assert.equal(run.child.exitCode, null, "the second signal does not abort the shutdown");
      await sleep(1200);
      run.child.kill("SIGINT");
      assert.equal(await run.exit, 1);
      assert.match(run.output, /shutdown abandoned/);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("a second Ctrl-C lets the shutdown finish and exit 0", async () => {
    const run = serviceWithSlowShutdown(5000);
    try {
      await waitFor(run, "ready");
      run.child.kill("SIGINT");
      await waitFor(run, "shutting down");
      await sleep(1200);
      run.child.kill("SIGINT");
      await waitFor(run, "still shutting down");
      assert.equal(await run.exit, 0);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("exits when its terminal is gone (closed while it runs in the background)", async () => {
    // It ignores SIGHUP as core does under npm start (not in the terminal's foreground group).
    const script = serviceScript(0, 'process.on("SIGHUP", () => {});');
    const pty = spawnPty(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {});
    try {
      let output = "";
      pty.onData((d) => {
        output += d;
      });
      const deadline = Date.now() + 30_000;
      while (!output.includes("ready") && Date.now() < deadline) await sleep(20);
      (pty as unknown as { destroy(): void }).destroy();
      await sleep(200);
      process.kill(pty.pid, "SIGTERM");
      const gone = Date.now() + 15_000;
      while ((await running(pty.pid)) && Date.now() < gone) await sleep(100);
      assert.equal(await running(pty.pid), false, "it exited");
    } finally {
      pty.kill("SIGKILL");
    }
  });
});
