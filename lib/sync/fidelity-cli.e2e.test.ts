/**
 * The fidelity table through the sync CLI as the Kubernetes containers run it: the driver's own
 * argv (syncCommand: `sh -c 'exec "$0" "$@" > /dev/termination-log' node /app/dist/sync/cli.mjs <op>
 * --dir … --prefix … --manifest …`) run as a real child process, with three substitutions: the
 * checkout's build of that bundle (dist/sync/cli.mjs) for the image's, a file for /dev/termination-log, and the pod's
 * volumes (/workspaces, /var/lib/devex-sync) mapped to temp dirs. Like the pod's containers it runs
 * as uid/gid 1000 when the test is root, so restore must work without root's permission overrides
 * (read-only directories, 0400 files). A pod restores (empty), its user builds the table, the persist
 * container stores it, a new pod restores it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SYNC_STATE_DIR, syncCommand, WORKSPACE_DIR } from "../../services/core/src/driver/kubernetes/objects.js";
import { projectRoot } from "../kit/project-root.js";
import { FIDELITY_BUILD, FIDELITY_PROBE, fidelityPaths, fidelityTable, parseProbe } from "./fidelity-fixture.js";

const run = promisify(execFile);
const CLI = join(projectRoot, "dist/sync/cli.mjs");

/** The pod's runAsUser/runAsGroup, when this test may switch to it. */
const POD_USER = process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : undefined;

describe("workspace fidelity through the sync CLI (Kubernetes init and persist containers)", function () {
  this.timeout(180_000);
  let tmp: string;
  const id = { replId: "r0fidelity", workspacePrefix: "repl/alice/r0fidelity/" };

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "devex-fidelity-cli-"));
    await chmod(tmp, 0o755);
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A pod: its two volumes as fresh directories owned by the pod's user (what fsGroup gives). */
  async function pod(name: string) {
    const volumes = { workspaces: join(tmp, name, "workspaces"), state: join(tmp, name, "sync-state") };
    for (const dir of [join(tmp, name), volumes.workspaces, volumes.state]) {
      await mkdir(dir, { recursive: true });
      if (POD_USER) await chown(dir, POD_USER.uid, POD_USER.gid);
    }
    const map = (arg: string) =>
      arg.startsWith(`${WORKSPACE_DIR}/`)
        ? volumes.workspaces + arg.slice(WORKSPACE_DIR.length)
        : arg.startsWith(`${SYNC_STATE_DIR}/`)
          ? volumes.state + arg.slice(SYNC_STATE_DIR.length)
          : arg;
    /** Runs the driver's sync container command; returns its termination message and its log. */
    const sync = async (op: "restore" | "persist") => {
      const [sh, c, script, node, cli, ...args] = syncCommand(op, id);
      assert.equal(node, "node");
      assert.equal(cli, "/app/dist/sync/cli.mjs");
      const terminationLog = join(tmp, name, `${op}.termination-log`);
      const argv = [c, script.replace("/dev/termination-log", terminationLog), process.execPath];
      const out = await run(sh, [...argv, CLI, ...args.map(map)], {
        cwd: projectRoot,
        env: { PATH: process.env.PATH, DEVEX_BLOB_DIR: join(tmp, "blobs") },
        ...POD_USER,
      });
      return { result: JSON.parse(await readFile(terminationLog, "utf8")), log: out.stderr };
    };
    const workspace = join(volumes.workspaces, id.replId);
    const shell = (script: string, args: string[] = []) =>
      run("bash", ["-c", script, "fidelity", ...args], { cwd: workspace, ...POD_USER });
    return { sync, workspace, shell };
  }

  it("every row of the fidelity table survives init-container restore → persist container → a new pod's restore", async () => {
    await mkdir(join(tmp, "blobs"));
    if (POD_USER) await chown(join(tmp, "blobs"), POD_USER.uid, POD_USER.gid);

    const first = await pod("pod-1");
    const empty = await first.sync("restore");
    assert.equal(empty.result.files, 0);
    await first.shell(FIDELITY_BUILD);
    const before = parseProbe((await first.shell(FIDELITY_PROBE, fidelityPaths())).stdout);
    const persisted = await first.sync("persist");
    assert.equal(persisted.result.skipped, 1, "the result counts (it must fit a termination message)");
    assert.match(persisted.log, /left out \(special files or unstorable names\): fifo\n/);
    assert.match(persisted.log, /hard links stored as separate copies: hard-[ab], hard-[ab]\n/);

    const second = await pod("pod-2");
    await second.sync("restore");
    const after = parseProbe((await second.shell(FIDELITY_PROBE, fidelityPaths())).stdout);
    const table = fidelityTable(
      `sync CLI${POD_USER ? " as uid 1000" : ""}: restore → persist → restore`,
      before,
      after,
    );
    assert.equal(table.failed, 0, "rows marked FAIL above");
    if (POD_USER)
      assert.equal((await stat(join(second.workspace, "text.txt"))).uid, POD_USER.uid, "restored as uid 1000");
    const again = await second.sync("persist");
    assert.equal(again.result.generation, persisted.result.generation, "the restored tree persists as unchanged");
  });
});
