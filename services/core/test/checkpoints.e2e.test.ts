/**
 * Checkpoints end to end on the embedded setup (core + local driver + real runners in the default
 * sandbox), through the public API only: a running repl checkpointed without stopping its programs,
 * its home included; a diff to the current files; a restore that restarts it on the checkpoint's
 * files and can be undone; forks that share content, stay independent, survive their parent, and
 * respect the quota; the automatic checkpoint of a stop.
 */
import assert from "node:assert/strict";
import { Code, type ConnectError } from "@connectrpc/connect";
import { FileChangeKind } from "../../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { listAll } from "../../../lib/blob/store.js";
import type { CoreClients } from "../../../lib/client/clients.js";
import { type Embedded, exec, startEmbedded } from "./embedded.js";

const text = (b: Uint8Array) => Buffer.from(b).toString();

describe("checkpoints end to end (local driver)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let core: CoreClients;
  before(async () => {
    e = await startEmbedded({ quota: 6 });
    core = await e.login("alice");
  });
  after(async () => {
    await e?.close();
  });

  const started = async (replId: string) => e.runner((await core.repls.startRepl({ replId })).runner!);

  it("a running repl is checkpointed while its programs run, diffed against now, restored (restarted) and the restore undone", async () => {
    const { repl } = await core.repls.createRepl({ name: "cp", template: "node" });
    const replId = repl!.replId;
    let runner = await started(replId);
    await runner.files.writeFile({ path: "app.js", content: Buffer.from("v1\n") });
    await runner.files.writeFile({ path: "gone.txt", content: Buffer.from("bye\n") });
    assert.equal((await exec(runner, "echo one > ~/mark.txt")).code, 0);
    const { terminal } = await runner.terminals.createTerminal({ command: ["sleep", "300"] });

    const { checkpoint } = await core.checkpoints.createCheckpoint({ replId, name: "v1", message: "first" });
    assert.equal(checkpoint!.name, "v1");
    assert.ok(checkpoint!.files > 0n);
    const { terminals } = await runner.terminals.listTerminals({});
    const sleeping = terminals.find((t) => t.terminalId === terminal!.terminalId);
    assert.equal(sleeping?.exited, false, "programs keep running");

    await runner.files.writeFile({ path: "app.js", content: Buffer.from("v2\n") });
    await runner.files.deleteFile({ path: "gone.txt" });
    await runner.files.writeFile({ path: "new.txt", content: Buffer.from("new\n") });
    assert.equal((await exec(runner, "echo two > ~/mark.txt")).code, 0);

    const { changes } = await core.checkpoints.diffCheckpoints({
      replId,
      fromCheckpointId: checkpoint!.checkpointId,
      includePatches: true,
    });
    const byPath = new Map(changes.map((c) => [c.path, c]));
    assert.equal(byPath.get("app.js")?.kind, FileChangeKind.CHANGED);
    assert.match(byPath.get("app.js")!.patch, /-v1\n\+v2/);
    assert.equal(byPath.get("gone.txt")?.kind, FileChangeKind.REMOVED);
    assert.equal(byPath.get("new.txt")?.kind, FileChangeKind.ADDED);
    const only = await core.checkpoints.diffCheckpoints({
      replId,
      fromCheckpointId: checkpoint!.checkpointId,
      paths: ["new.txt"],
    });
    assert.deepEqual(
      only.changes.map((c) => c.path),
      ["new.txt"],
    );

    const restored = await core.checkpoints.restoreCheckpoint({ replId, checkpointId: checkpoint!.checkpointId });
    assert.equal(restored.repl?.status, ReplStatus.RUNNING, "running again");
    assert.equal(restored.undo?.auto, "before-restore");
    runner = e.runner((await core.repls.startRepl({ replId })).runner!);
    assert.equal(text((await runner.files.readFile({ path: "app.js" })).content), "v1\n");
    assert.equal(text((await runner.files.readFile({ path: "gone.txt" })).content), "bye\n");
    await assert.rejects(runner.files.readFile({ path: "new.txt" }), (err: ConnectError) => err.code === Code.NotFound);
    assert.equal((await exec(runner, "cat ~/mark.txt")).out.trim(), "one", "the home came back with the workspace");

    await core.checkpoints.restoreCheckpoint({ replId, checkpointId: restored.undo!.checkpointId });
    runner = e.runner((await core.repls.startRepl({ replId })).runner!);
    assert.equal(text((await runner.files.readFile({ path: "app.js" })).content), "v2\n", "the restore was undone");
    assert.equal((await exec(runner, "cat ~/mark.txt")).out.trim(), "two");

    await core.repls.stopRepl({ replId });
    const autos = (await core.checkpoints.listCheckpoints({ replId })).checkpoints.map((c) => c.auto);
    assert.ok(autos.includes("before-stop"), `a stop makes an automatic checkpoint: ${autos.join(", ")}`);
    await core.repls.deleteRepl({ replId });
    assert.deepEqual(await listAll(e.blobs, `repl/alice/${replId}/`), []);
    assert.deepEqual(await listAll(e.blobs, `home/alice/${replId}/`), []);
  });

  it("forks share their parent's content, stay independent, survive its deletion, and count against the quota", async () => {
    const { repl } = await core.repls.createRepl({ name: "parent", template: "node" });
    const parentId = repl!.replId;
    const parent = await started(parentId);
    await parent.files.writeFile({ path: "shared.txt", content: Buffer.from("from the parent\n") });
    await core.repls.setEnvironmentVariable({ replId: parentId, name: "API_KEY", value: "s3cret", secret: true });

    const forked = await core.checkpoints.forkRepl({ replId: parentId, name: "try", count: 2 });
    assert.equal(forked.checkpoint?.auto, "fork");
    assert.deepEqual(
      forked.repls.map((r) => [r.name, r.status]),
      [
        ["try #1", ReplStatus.STOPPED],
        ["try #2", ReplStatus.STOPPED],
      ],
    );
    const forkId = forked.repls[0].replId;
    const forkKeys = (await listAll(e.blobs, `repl/alice/${forkId}/`)).map((k) => k.key);
    assert.ok(!forkKeys.some((k) => k.includes("/packs/") || k.includes("/objects/")), "metadata only");
    const origin = (await core.checkpoints.listCheckpoints({ replId: forkId })).checkpoints;
    assert.deepEqual(
      origin.map((c) => [c.checkpointId, c.auto]),
      [[forked.checkpoint!.checkpointId, "forked-from"]],
      "a fork starts with its origin, under the parent's id",
    );

    const fork = await started(forkId);
    assert.equal(text((await fork.files.readFile({ path: "shared.txt" })).content), "from the parent\n");
    assert.equal((await exec(fork, 'printf %s "$API_KEY"')).out, "s3cret", "the fork's secret opens (sealed for it)");
    await fork.files.writeFile({ path: "shared.txt", content: Buffer.from("the fork's\n") });
    await parent.files.writeFile({ path: "parent-only.txt", content: Buffer.from("p\n") });
    await core.repls.stopRepl({ replId: forkId });
    await core.repls.stopRepl({ replId: parentId });

    // Three repls now (quota 6): four more forks are refused and none is made.
    await assert.rejects(
      core.checkpoints.forkRepl({ replId: parentId, count: 4 }),
      (err: ConnectError) => err.code === Code.ResourceExhausted,
    );
    assert.equal((await core.repls.listRepls({})).repls.length, 3);

    const parentAgain = await started(parentId);
    assert.equal(text((await parentAgain.files.readFile({ path: "shared.txt" })).content), "from the parent\n");
    await core.repls.deleteRepl({ replId: parentId });

    const forkAgain = await started(forkId);
    assert.equal(text((await forkAgain.files.readFile({ path: "shared.txt" })).content), "the fork's\n");
    await assert.rejects(
      forkAgain.files.readFile({ path: "parent-only.txt" }),
      (err: ConnectError) => err.code === Code.NotFound,
    );
    assert.match(text((await forkAgain.files.readFile({ path: "index.js" })).content), /Hello from Devex/);
    const other = await started(forked.repls[1].replId);
    assert.equal(text((await other.files.readFile({ path: "shared.txt" })).content), "from the parent\n");

    for (const r of forked.repls) await core.repls.deleteRepl({ replId: r.replId });
    for (const id of [parentId, ...forked.repls.map((r) => r.replId)])
      assert.deepEqual(
        (await listAll(e.blobs, `repl/alice/${id}/`)).map((k) => k.key),
        [],
        "the parent's lingering content went with its last fork",
      );
  });

  it("another user's repl is NotFound, and so is an unknown checkpoint", async () => {
    const { repl } = await core.repls.createRepl({ name: "mine", template: "node" });
    const bob = await e.login("bob");
    await assert.rejects(
      bob.checkpoints.createCheckpoint({ replId: repl!.replId }),
      (err: ConnectError) => err.code === Code.NotFound,
    );
    await assert.rejects(
      core.checkpoints.restoreCheckpoint({ replId: repl!.replId, checkpointId: "000000000-00000000" }),
      (err: ConnectError) => err.code === Code.NotFound && /no checkpoint/.test(err.rawMessage),
    );
    await core.repls.deleteRepl({ replId: repl!.replId });
  });
});
