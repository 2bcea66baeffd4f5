/**
 * The review's critical finding, end to end in the default sandbox: a process inside a repl swaps a
 * workspace directory with a symlink to a host directory (renameat2 RENAME_EXCHANGE in a tight loop)
 * while core, as root, persists the workspace every 100 ms and then on stop, and restores it on the
 * next start. The host directory is made by the test and holds a root-only 0600 file with a random
 * marker: no byte of it may reach the blob store or come back into the repl.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";
import { type Embedded, startEmbedded } from "./embedded.js";

const SWAP_SECONDS = 6;
/** Runs inside the repl: exchanges "d" and "link" (a link to the host bait dir) until time is up. */
const swapper = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.symlink(sys.argv[1], "link")
end, swaps = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    for _ in range(256):
        if libc.renameat2(-100, b"d", -100, b"link", 2) != 0:
            sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
        swaps += 1
print("swaps", swaps, flush=True)
`;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

describe("persist and restore racing a symlink swap inside a repl (default sandbox)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let bait: string;
  const marker = `BAIT-${randomBytes(12).toString("hex")}`;

  before(async function () {
    requireProgram(this, "bwrap", () =>
      createSandbox({ mode: "auto", limits: defaultSandboxLimits }).kind === "bwrap"
        ? undefined
        : "bwrap cannot run here",
    );
    requireProgram(this, "python3");
    bait = await mkdtemp(join(tmpdir(), "devex-bait-"));
    await writeFile(join(bait, "secret.txt"), `${marker}\n`.repeat(64), { mode: 0o600 });
    await chmod(bait, 0o700);
    e = await startEmbedded({ persistIntervalMs: 100 });
  });
  after(async () => {
    await e?.close();
    await rm(bait, { recursive: true, force: true });
  });

  it("no byte of a root-only host file reaches the blob store or the repl", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "swapper", template: "node" });
    const replId = repl!.replId;
    let runner = e.runner((await core.repls.startRepl({ replId })).runner!);
    for (let i = 0; i < 20; i++) {
      await runner.files.writeFile({ path: `d/f${i}.txt`, content: Buffer.from(`inside ${i}`), createParents: true });
    }
    await runner.files.writeFile({ path: "swap.py", content: Buffer.from(swapper) });
    const { process: swap } = await runner.processes.startProcess({
      command: { argv: ["python3", "swap.py", bait, String(SWAP_SECONDS)] },
      name: "swap",
    });
    // Periodic persists (every 100 ms) run against the swapping tree meanwhile.
    let out = "";
    for (let i = 0; i < (SWAP_SECONDS + 20) * 10 && !/swaps \d+/.test(out); i++) {
      await new Promise((r) => setTimeout(r, 100));
      const read = await runner.processes.readProcessOutput({ processId: swap!.processId });
      out = Buffer.from(read.data).toString();
    }
    const swaps = Number(/swaps (\d+)/.exec(out)?.[1] ?? 0);
    assert.ok(swaps > 10_000, `the swapper ran (${out.trim()})`);

    await core.repls.stopRepl({ replId });
    for (const file of await filesUnder(join(e.dir, "blobs"))) {
      assert.ok(!(await readFile(file)).includes(marker), `${file} holds the host file's bytes`);
    }
    for (const [rel, content] of await readStoredWorkspace(e.blobs, `repl/alice/${replId}/`)) {
      assert.ok(!content.includes(marker), `stored ${rel} holds the host file's bytes`);
    }

    runner = e.runner((await core.repls.startRepl({ replId })).runner!);
    const found = await runner.files.searchFiles({ path: "", contentPattern: marker });
    assert.deepEqual(found.matches, []);
    const listed = await runner.files.listFiles({ path: "", depth: 8, includeHidden: true });
    assert.ok(!listed.entries.some((x) => x.path.endsWith("secret.txt")), "the bait's name came back");
    await core.repls.stopRepl({ replId });
  });
});
