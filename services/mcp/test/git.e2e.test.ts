/**
 * create_repl from a git repository end to end: an SDK client over Streamable HTTP, the MCP server
 * in front of the embedded setup with real runners, and a git server on loopback
 * (lib/testing/git-server.ts; the sandbox shares the host network so that the clone reaches it).
 * The call waits for the clone, with progress notifications, and returns the repl running at the
 * branch's commit; a missing branch is a tool error with git's reason, and no repl is left.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { startGitServer, type TestGitServer, writeFiles } from "../../../lib/testing/git-server.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

type Structured = Record<string, unknown>;

describe("create_repl from a git repository (MCP over HTTP, embedded setup)", function () {
  this.timeout(180_000);
  let env: EmbeddedMcp;
  let server: TestGitServer;
  let client: Client;
  let feature = "";

  before(async function () {
    requireProgram(this, "git");
    server = await startGitServer();
    await server.repository("app", async (work, git) => {
      // Enough to arrive in several progress reports.
      await writeFiles(work, { "README.md": "main\n", "blob.bin": randomBytes(2 * 1024 * 1024) });
      git("add", ".");
      git("commit", "-q", "-m", "first");
      git("checkout", "-q", "-b", "feature");
      await writeFiles(work, { "FEATURE.md": "on the branch\n" });
      git("add", ".");
      git("commit", "-q", "-m", "feature");
      feature = git("rev-parse", "HEAD").trim();
      git("checkout", "-q", "main");
    });
    env = await startEmbeddedMcp(
      ["alice"],
      {},
      { sandboxNetwork: true, quota: 5, config: { DEVEX_GIT_ALLOW_HTTP: "true" } },
    );
    client = new Client({ name: "e2e-git", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(env.endpoint), {
        requestInit: { headers: { authorization: `Bearer ${env.tokens.alice}` } },
      }),
    );
  });
  after(async () => {
    await client?.close();
    await env?.close();
    await server?.close();
  });

  const call = async (name: string, args: Record<string, unknown>, progress?: Progress[]) =>
    (await client.callTool({ name, arguments: args }, undefined, {
      onprogress: progress ? (p) => progress.push(p) : undefined,
    })) as CallToolResult;
  const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");

  it("waits for the clone with progress and returns the repl running at the branch's commit", async () => {
    const url = `${server.url}/app.git`;
    const progress: Progress[] = [];
    const res = await call("create_repl", { name: "agent-git", git: { url, ref: "feature" } }, progress);
    assert.ok(!res.isError, text(res));
    const repl = (res.structuredContent as Structured).repl as Structured;
    assert.equal(repl.status, "running");
    assert.deepEqual(repl.git, {
      url,
      ref: "feature",
      status: "done",
      commit: feature,
      github_grant: false,
      allow_push: false,
    });
    const messages = progress.map((p) => p.message ?? "");
    assert.equal(messages[0], `cloning ${url} into repl ${repl.repl_id}`);
    assert.ok(
      messages.some((m) => /^cloning .*: \d+ of \d+ objects, \d+\.\d MiB$/.test(m)),
      JSON.stringify(messages),
    );
    assert.deepEqual(progress.at(-1), {
      progress: 1,
      total: 1,
      message: `repl ${repl.repl_id} is running, cloned at ${feature.slice(0, 12)}`,
    });

    const cat = await call("exec", { repl_id: repl.repl_id, command: "cat FEATURE.md" });
    assert.equal((cat.structuredContent as Structured).stdout, "on the branch\n");
    assert.ok(!(await call("delete_repl", { repl_id: repl.repl_id })).isError);
  });

  it("a missing branch is a tool error with git's reason, and leaves no repl", async () => {
    const res = await call("create_repl", { name: "bad", git: { url: `${server.url}/app.git`, ref: "nope" } });
    assert.equal(res.isError, true);
    assert.match(
      text(res),
      /^clone failed: Remote branch nope not found in upstream origin \(repl [a-z0-9-]+ was deleted/,
    );
    const list = (await call("list_repls", {})).structuredContent as Structured;
    assert.deepEqual(list.repls ?? [], []);
  });
});
