/**
 * The checkpoint tools through the real MCP server (Streamable HTTP, the SDK's client) in front of
 * the embedded setup (core with its CheckpointService, the local driver, real runner processes): a
 * stopped repl checkpointed, listed, diffed between two checkpoints (bounded, with patches, narrowed
 * by path), forked twice in one call (and past the quota, refused), restored and its checkpoint
 * deleted; unknown ids said so with what there is; and a running repl restored, restarted on the
 * restored files, with the file and process tools following it to its new runner.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { projectRoot } from "../../../lib/kit/project-root.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

type Structured = Record<string, unknown>;
type CheckpointJson = { checkpoint_id: string; name: string; auto: string; files: number; create_time: string };
type ChangeJson = { path: string; change: string; patch: string; patch_omitted: string; mode_after: string };

const templateIndex = readFileSync(join(projectRoot, "templates/node/index.js"), "utf8");

describe("checkpoint tools end to end (embedded setup)", function () {
  this.timeout(120_000);
  let env: EmbeddedMcp;
  let client: Client;

  before(async () => {
    env = await startEmbeddedMcp(["alice"], {}, { quota: 6 });
    client = new Client({ name: "checkpoints-e2e", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(env.endpoint), {
        requestInit: { headers: { authorization: `Bearer ${env.tokens.alice}` } },
      }),
    );
  });
  after(async () => {
    await client?.close();
    await env?.close();
  });

  const call = async (name: string, args: Structured) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
  async function ok(name: string, args: Structured): Promise<Structured> {
    const r = await call(name, args);
    assert.ok(!r.isError, `${name} failed: ${text(r)}`);
    return r.structuredContent as Structured;
  }
  async function failure(name: string, args: Structured): Promise<string> {
    const r = await call(name, args);
    assert.equal(r.isError, true, `${name} should fail: ${text(r)}`);
    return text(r);
  }
  const checkpointOf = (s: Structured, field = "checkpoint") => s[field] as CheckpointJson;
  const listed = async (replId: string) =>
    ((await ok("list_checkpoints", { repl_id: replId })).checkpoints as CheckpointJson[]).map((c) => c.checkpoint_id);

  it("checkpoints a stopped repl, diffs two checkpoints, forks it twice, restores it and deletes a checkpoint", async () => {
    const repl = (await ok("create_repl", { name: "cp", template: "node" })).repl as Structured;
    const replId = repl.repl_id as string;
    assert.equal(repl.status, "stopped");

    const first = checkpointOf(await ok("checkpoint", { repl_id: replId, name: "template files" }));
    assert.match(first.checkpoint_id, /^[0-9a-z][0-9a-z-]*$/);
    assert.equal(first.name, "template files");
    assert.equal(first.auto, "");
    assert.equal(first.files, 2, "index.js and package.json");
    assert.ok(Math.abs(Date.parse(first.create_time) - Date.now()) < 60_000, first.create_time);

    // A second state: one file changed, two added, 320 more below many/; the repl is then stopped.
    await ok("start_repl", { repl_id: replId });
    await ok("write_file", { repl_id: replId, path: "index.js", content: "console.log('v2');\n" });
    await ok("write_file", { repl_id: replId, path: "notes.md", content: "first line\n" });
    const made = await ok("exec", {
      repl_id: replId,
      command:
        "mkdir many && for i in $(seq 1 320); do echo $i > many/f$i.txt; done && yes xxxxxxxxx | head -n 6000 > big.txt",
    });
    assert.equal(made.exit_code, 0, String(made.stderr));
    await ok("stop_repl", { repl_id: replId });
    const second = checkpointOf(await ok("checkpoint", { repl_id: replId, name: "v2", message: "index.js rewritten" }));
    assert.equal(second.files, 2 + 2 + 320);

    const all = (await ok("list_checkpoints", { repl_id: replId })).checkpoints as CheckpointJson[];
    assert.deepEqual(
      all.map((c) => [
        c.name || c.auto,
        c.checkpoint_id === second.checkpoint_id || c.checkpoint_id === first.checkpoint_id,
      ]),
      [
        ["v2", true],
        ["before-stop", false],
        ["template files", true],
      ],
      "newest first: the stop's automatic checkpoint between the two",
    );

    const whole = await ok("diff_checkpoints", {
      repl_id: replId,
      from_checkpoint_id: first.checkpoint_id,
      to_checkpoint_id: second.checkpoint_id,
    });
    assert.equal(whole.summary, "323 files differ: 322 added, 1 changed");
    assert.equal((whole.changes as ChangeJson[]).length, 300);
    assert.equal(whole.note, "only the first 300 of 323 files (by path) are listed: narrow the diff with paths");

    const narrowed = await ok("diff_checkpoints", {
      repl_id: replId,
      from_checkpoint_id: first.checkpoint_id,
      to_checkpoint_id: second.checkpoint_id,
      include_patches: true,
      paths: ["index.js", "notes.md", "big.txt"],
    });
    const changes = narrowed.changes as ChangeJson[];
    assert.deepEqual(
      changes.map((c) => [c.path, c.change]),
      [
        ["big.txt", "added"],
        ["index.js", "changed"],
        ["notes.md", "added"],
      ],
    );
    assert.equal(narrowed.summary, "3 files differ: 2 added, 1 changed");
    const [big, index, notes] = changes;
    assert.equal(big.patch, "", "60,000 characters of patch: past the tool's 50,000");
    assert.equal(big.patch_omitted, "limit reached");
    assert.match(index.patch, /^-.*console\.log/m);
    assert.match(index.patch, /^\+console\.log\('v2'\);$/m);
    assert.match(notes.patch, /^\+first line$/m);
    assert.equal(notes.mode_after, "0644");
    assert.equal(narrowed.note, "1 patch was left out past 50000 characters of patches: narrow the diff with paths");

    const forked = await ok("fork_repl", {
      repl_id: replId,
      checkpoint_id: first.checkpoint_id,
      name: "try",
      count: 2,
    });
    const forks = forked.repls as Structured[];
    assert.deepEqual(
      forks.map((f) => [f.name, f.status, f.template]),
      [
        ["try #1", "stopped", "node"],
        ["try #2", "stopped", "node"],
      ],
    );
    assert.equal(checkpointOf(forked).checkpoint_id, first.checkpoint_id);
    assert.match(
      await failure("fork_repl", { repl_id: replId, count: 20 }),
      /^repl quota reached: at most 6 repls per user/,
    );
    assert.equal(((await ok("list_repls", {})).repls as Structured[]).length, 3, "a refused fork makes none");
    // A fork holds the checkpoint's files, not the repl's later ones.
    const forkId = forks[0].repl_id as string;
    await ok("start_repl", { repl_id: forkId });
    assert.equal((await ok("read_file", { repl_id: forkId, path: "index.js" })).content, templateIndex);
    const forkFiles = ((await ok("list_files", { repl_id: forkId, path: "" })).entries as Structured[]).map(
      (e) => e.path,
    );
    assert.deepEqual(forkFiles.sort(), ["index.js", "package.json"]);
    await ok("delete_repl", { repl_id: forkId });

    const restored = await ok("restore_checkpoint", { repl_id: replId, checkpoint_id: first.checkpoint_id });
    assert.equal((restored.repl as Structured).status, "stopped", "a stopped repl stays stopped");
    const undo = checkpointOf(restored, "undo");
    assert.equal(undo.auto, "before-restore");
    const now = await ok("diff_checkpoints", { repl_id: replId, from_checkpoint_id: first.checkpoint_id });
    assert.deepEqual([now.summary, now.changes, now.note], ["no files differ", [], ""]);
    const undone = await ok("diff_checkpoints", {
      repl_id: replId,
      from_checkpoint_id: undo.checkpoint_id,
      to_checkpoint_id: second.checkpoint_id,
    });
    assert.equal(undone.summary, "no files differ", "undo holds the files from before the restore");

    assert.deepEqual(await ok("delete_checkpoint", { repl_id: replId, checkpoint_id: second.checkpoint_id }), {
      checkpoint_id: second.checkpoint_id,
    });
    const left = await listed(replId);
    assert.ok(!left.includes(second.checkpoint_id));
    assert.deepEqual([left[0], left.at(-1)], [undo.checkpoint_id, first.checkpoint_id]);

    // Unknown ids: core's words, and what there is instead.
    const unknown = await failure("restore_checkpoint", { repl_id: replId, checkpoint_id: second.checkpoint_id });
    assert.equal(
      unknown,
      `repl ${replId} has no checkpoint "${second.checkpoint_id}". Its checkpoints, newest first: ${undo.checkpoint_id} "before restoring template files" (before-restore), ${left[1]} (before-stop), ${first.checkpoint_id} "template files".`,
    );
    assert.equal(await failure("delete_checkpoint", { repl_id: replId, checkpoint_id: second.checkpoint_id }), unknown);
    assert.match(
      await failure("diff_checkpoints", { repl_id: replId, from_checkpoint_id: "not-a-checkpoint" }),
      /^repl \S+ has no checkpoint "not-a-checkpoint"\. Its checkpoints, newest first: /,
    );
    assert.equal(
      await failure("list_checkpoints", { repl_id: "no-such-repl" }),
      `repl "no-such-repl" not found. Your repls: ${forks[1].repl_id}, ${replId}.`,
    );
    const freshFork = await ok("fork_repl", { repl_id: replId });
    const fresh = freshFork.repls as Structured[];
    const origin = checkpointOf(freshFork).checkpoint_id;
    assert.equal(
      await failure("restore_checkpoint", { repl_id: fresh[0].repl_id, checkpoint_id: first.checkpoint_id }),
      `repl ${fresh[0].repl_id} has no checkpoint "${first.checkpoint_id}". Its checkpoints, newest first: ${origin} "forked from cp" (forked-from).`,
      "a fork starts with its origin only, under the parent's checkpoint id",
    );
  });

  it("restores a running repl: restarted on the restored files, the file and process tools follow it", async () => {
    const replId = ((await ok("create_repl", { name: "live", template: "node" })).repl as Structured).repl_id as string;
    await ok("start_repl", { repl_id: replId });
    await ok("write_file", { repl_id: replId, path: "state.txt", content: "good\n" });
    const good = checkpointOf(await ok("checkpoint", { repl_id: replId, name: "good" }));
    await ok("write_file", { repl_id: replId, path: "state.txt", content: "broken\n" });
    await ok("write_file", { repl_id: replId, path: "junk.txt", content: "junk\n" });
    await ok("start_process", { repl_id: replId, command: "sleep 300", name: "sleeper" });

    const restored = await ok("restore_checkpoint", { repl_id: replId, checkpoint_id: good.checkpoint_id });
    assert.equal((restored.repl as Structured).status, "running");
    assert.equal((await ok("read_file", { repl_id: replId, path: "state.txt" })).content, "good\n");
    assert.match(await failure("read_file", { repl_id: replId, path: "junk.txt" }), /junk\.txt/);
    const { processes } = await ok("list_processes", { repl_id: replId });
    assert.ok(!(processes as Structured[]).some((p) => p.name === "sleeper" && p.running), "its programs ended");

    // The undo brings the broken state back, on yet another restart.
    await ok("restore_checkpoint", { repl_id: replId, checkpoint_id: checkpointOf(restored, "undo").checkpoint_id });
    assert.equal((await ok("read_file", { repl_id: replId, path: "state.txt" })).content, "broken\n");
    await ok("delete_repl", { repl_id: replId });
  });
});
