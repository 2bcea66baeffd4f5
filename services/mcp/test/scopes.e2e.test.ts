/**
 * A read-only agent: an API token with the scopes repls:read and files:read, through MCP (the SDK's
 * client and the official Inspector CLI), core and the runner, on the embedded setup with real
 * runner processes. It lists and reads; it cannot write, exec or stop, and MCP lists only the
 * tools it may call.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { coreClientsFor, runnerClientsFor } from "../../../lib/client/node.js";
import { issueApiToken } from "../../core/src/auth/secrets.js";
import { type EmbeddedMcp, inspectorCli, startEmbeddedMcp } from "./embedded-mcp.js";

const READ_TOOLS = [
  "diff_checkpoints",
  "directory_tree",
  "download_file",
  "get_network_policy",
  "get_preview_url",
  "get_repl_status",
  "list_checkpoints",
  "list_environment_variables",
  "list_files",
  "list_github_repositories",
  "list_repls",
  "list_templates",
  "read_file",
  "read_multiple_files",
  "search_files",
  "start_repl",
  "stat_file",
];

const denied = (e: unknown) => ConnectError.from(e).code === Code.PermissionDenied;

describe("a read-only agent token (repls:read files:read)", function () {
  this.timeout(120_000);
  let env: EmbeddedMcp;
  let reader: string;
  let replId: string;

  before(async () => {
    env = await startEmbeddedMcp(["alice"]);
    const ttl = 3_600_000;
    reader = (await issueApiToken(env.e.state, "alice", "reader", ttl, Date.now(), ["repls:read", "files:read"]))
      .secret;
    // Alice's own full token sets the scene: a running repl with a file.
    const core = coreClientsFor(env.e.core.url, { token: env.tokens.alice });
    replId = (await core.repls.createRepl({ name: "shared", template: "node" })).repl!.replId;
    const { runner } = await core.repls.startRepl({ replId });
    const files = runnerClientsFor(runner!.url, { token: runner!.token }).files;
    await files.writeFile({ path: "notes.txt", content: Buffer.from("read me") });
  });
  after(() => env?.close());

  it("core and the runner let it list and read, and refuse writing, running and stopping", async () => {
    const core = coreClientsFor(env.e.core.url, { token: reader });
    const me = await core.auth.getCurrentUser({});
    assert.deepEqual(me.scopes, ["repls:read", "files:read"]);
    assert.deepEqual(
      (await core.repls.listRepls({})).repls.map((r) => r.replId),
      [replId],
    );
    const { runner } = await core.repls.startRepl({ replId });
    const r = runnerClientsFor(runner!.url, { token: runner!.token });
    assert.equal(Buffer.from((await r.files.readFile({ path: "notes.txt" })).content).toString(), "read me");
    assert.deepEqual((await r.files.listFiles({ path: "" })).entries.map((e) => e.name).includes("notes.txt"), true);
    await assert.rejects(r.files.writeFile({ path: "notes.txt", content: Buffer.from("changed") }), denied);
    await assert.rejects(r.files.deleteFile({ path: "notes.txt" }), denied);
    await assert.rejects(r.terminals.createTerminal({ command: ["true"] }), denied);
    await assert.rejects(r.processes.startProcess({ command: { argv: ["true"] } }), denied);
    await assert.rejects(core.repls.stopRepl({ replId }), denied);
    await assert.rejects(core.repls.createRepl({ name: "more", template: "node" }), denied);
    // Nor can it make itself a stronger token, or any token (that takes admin).
    await assert.rejects(core.auth.createApiToken({ name: "escalate", scopes: ["exec"] }), denied);
    assert.equal(Buffer.from((await r.files.readFile({ path: "notes.txt" })).content).toString(), "read me");
  });

  it("MCP lists only the tools it may call and refuses the others by name", async () => {
    const client = new Client({ name: "reader", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(env.endpoint), {
        requestInit: { headers: { authorization: `Bearer ${reader}` } },
      }),
    );
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), READ_TOOLS);
      const read = (await client.callTool({
        name: "read_file",
        arguments: { repl_id: replId, path: "notes.txt" },
      })) as CallToolResult;
      assert.equal((read.structuredContent as { content: string }).content, "read me");
      const checkpoints = (await client.callTool({
        name: "list_checkpoints",
        arguments: { repl_id: replId },
      })) as CallToolResult;
      assert.deepEqual(checkpoints.structuredContent, { checkpoints: [] });
      for (const [name, args] of [
        ["write_file", { repl_id: replId, path: "notes.txt", content: "x" }],
        ["exec", { repl_id: replId, command: "true" }],
        ["stop_repl", { repl_id: replId }],
        ["restore_checkpoint", { repl_id: replId, checkpoint_id: "0000000000-0000" }],
      ] as const) {
        const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
        assert.equal(res.isError, true, name);
        assert.match((res.content[0] as { text: string }).text, new RegExp(`may not use ${name}: it needs the scope`));
      }
    } finally {
      await client.close();
    }
  });

  it("the official MCP Inspector CLI (v2) with that token sees the same read tools", async function () {
    this.timeout(300_000);
    const listed = await inspectorCli(this, env.endpoint, reader, "tools/list");
    assert.deepEqual(listed.tools?.map((t) => t.name).sort(), READ_TOOLS);
  });
});
