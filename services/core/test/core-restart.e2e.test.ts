/**
 * Core (main.ts, as `npm start` runs it) killed with SIGKILL and started again on the same data dir:
 * runners a session still points at are re-adopted and keep working through the proxy, a runner no
 * session points at is persisted and stopped, the dead core's pooled processes are gone, and Ctrl-C
 * (SIGTERM) persists and stops everything, leaving no runner process behind.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { coreClientsFor, runnerClientsFor } from "../../../lib/client/node.js";
import { isAlive } from "../../../lib/kit/pids.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { freePorts } from "../../../lib/testing/ports.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { createEmbeddedStore } from "../src/state/embedded.js";

const mainTs = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Rec {
  procId: string;
  pid: number;
  state: string;
  replId?: string;
}

async function records(dataDir: string): Promise<Rec[]> {
  const dir = join(dataDir, "local", "runners");
  const out: Rec[] = [];
  for (const d of await readdir(dir).catch(() => [] as string[])) {
    try {
      out.push(JSON.parse(await readFile(join(dir, d, "record.json"), "utf8")));
    } catch {}
  }
  return out;
}

describe("core killed and restarted (main.ts processes)", function () {
  this.timeout(120_000);
  let dataDir: string;
  let port: number;
  let previewPort: number;
  let url: string;
  let child: ChildProcess | undefined;
  const allPids = new Set<number>();

  async function startCore(): Promise<ChildProcess> {
    const c = spawn(process.execPath, ["--import", "tsx", mainTs], {
      env: {
        ...process.env,
        DEVEX_DATA_DIR: dataDir,
        DEVEX_CORE_PORT: String(port),
        DEVEX_PREVIEW_PORT: String(previewPort),
        DEVEX_RUNNER_POOL_SIZE: "1",
        DEVEX_PERSIST_INTERVAL: "0",
        // Repls stay without outbound network: this core runs in the host's namespace, not a test-made one.
        DEVEX_EGRESS: "off",
        DEVEX_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    await until("core to answer /healthz", async () => {
      if (c.exitCode !== null) throw new Error(`core exited with ${c.exitCode}`);
      return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true;
    });
    return c;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "devex-restart-"));
    [port, previewPort] = (await freePorts(2)) as [number, number];
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    child?.kill("SIGKILL");
    for (const pid of allPids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  });

  it("re-adopts live runners, stops orphans, leaves no runner process after Ctrl-C", async () => {
    const state = await createEmbeddedStore(join(dataDir, "state"));
    const { secret } = await issueApiToken(state, "alice", "test");
    await state.close();

    child = await startCore();
    const core = coreClientsFor(url, { token: secret });
    const [a, b] = await Promise.all([
      core.repls.createRepl({ name: "a", template: "node" }),
      core.repls.createRepl({ name: "b", template: "node" }),
    ]);
    const ra = a.repl!.replId;
    const rb = b.repl!.replId;
    const sa = await core.repls.startRepl({ replId: ra });
    const sb = await core.repls.startRepl({ replId: rb });
    await runnerClientsFor(sa.runner!.url, { token: sa.runner!.token }).files.writeFile({
      path: "a.txt",
      content: Buffer.from("from a"),
    });
    await runnerClientsFor(sb.runner!.url, { token: sb.runner!.token }).files.writeFile({
      path: "b.txt",
      content: Buffer.from("from b"),
    });
    await until("the pool to refill", async () => (await records(dataDir)).some((r) => r.state === "pool"));
    const before = await records(dataDir);
    for (const r of before) allPids.add(r.pid);
    const runnerA = before.find((r) => r.replId === ra)!;
    const runnerB = before.find((r) => r.replId === rb)!;
    const pooled = before.filter((r) => r.state === "pool");

    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    await until("pooled processes of the dead core to exit", () => pooled.every((p) => !isAlive(p.pid)));
    assert.ok(isAlive(runnerA.pid) && isAlive(runnerB.pid), "assigned runners outlive core");

    // B's session disappears (as if it had expired): its runner is now an orphan.
    const s2 = await createEmbeddedStore(join(dataDir, "state"));
    await s2.deleteActiveSession(rb);
    await s2.close();

    child = await startCore();
    for (const r of await records(dataDir)) allPids.add(r.pid);
    await until("the orphaned runner to be stopped", () => !isAlive(runnerB.pid));
    assert.ok(isAlive(runnerA.pid), "the runner a session points at is re-adopted");
    const files = runnerClientsFor(sa.runner!.url, { token: sa.runner!.token }).files;
    assert.equal(Buffer.from((await files.readFile({ path: "a.txt" })).content).toString(), "from a");

    const blobs = createLocalBlobStore(join(dataDir, "blobs"));
    const storedB = await readStoredWorkspace(blobs, `repl/alice/${rb}/`);
    assert.equal(storedB.get("b.txt")?.toString(), "from b", "the orphan was persisted before it was stopped");

    // Ctrl-C: persist and stop every repl, exit cleanly.
    for (const r of await records(dataDir)) allPids.add(r.pid);
    child.kill("SIGTERM");
    const code = await new Promise((r) => child!.once("exit", r));
    child = undefined;
    assert.equal(code, 0);
    await until("every runner process to be gone", () => [...allPids].every((pid) => !isAlive(pid)), 5000);
    assert.deepEqual(await records(dataDir), []);
    assert.equal((await readStoredWorkspace(blobs, `repl/alice/${ra}/`)).get("a.txt")?.toString(), "from a");
    const s3 = await createEmbeddedStore(join(dataDir, "state"));
    assert.equal((await s3.getRepl(ra))?.status, "stopped");
    assert.equal(await s3.getActiveSession(ra), undefined);
    await s3.close();
  });
});
