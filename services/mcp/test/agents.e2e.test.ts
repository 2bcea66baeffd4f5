/**
 * Agents driving real repls: the MCP server in front of the embedded setup (core + local driver +
 * real runner processes), reached by the SDK client over in-memory, stdio and Streamable HTTP
 * transports, and by the official MCP Inspector CLI as an independent client.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { EgressMode } from "../../../gen/devex/core/v1/repl_pb.js";
import { coreClientsFor } from "../../../lib/client/node.js";
import { issueApiToken } from "../../core/src/auth/secrets.js";
import { type EmbeddedMcp, inspectorCli, startEmbeddedMcp } from "./embedded-mcp.js";

const root = join(import.meta.dirname, "..", "..", "..");

type Structured = Record<string, unknown>;

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function ok(result: CallToolResult): Structured {
  const text = result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
  assert.ok(!result.isError, `tool failed: ${text}`);
  return result.structuredContent as Structured;
}

/** Runs `command` with the exec tool until its stdout is `expected`: a change reaches the runner within a second. */
async function execUntil(client: Client, replId: string, command: string, expected: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { stdout } = ok(await call(client, "exec", { repl_id: replId, command }));
    if (stdout === expected) return;
    assert.ok(
      Date.now() < deadline,
      `${command} never printed ${JSON.stringify(expected)} (last: ${JSON.stringify(stdout)})`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
}

function errorText(result: CallToolResult): string {
  assert.equal(result.isError, true, "expected a tool error");
  return result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
}

describe("MCP server end to end (embedded setup)", function () {
  this.timeout(120_000);
  let env: EmbeddedMcp;
  let alice: string;
  let bob: string;

  before(async () => {
    env = await startEmbeddedMcp(["alice", "bob"]);
    ({ alice, bob } = env.tokens);
  });
  after(async () => {
    await env?.close();
  });

  async function httpClient(token: string): Promise<Client> {
    const client = new Client({ name: "e2e", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(env.endpoint), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    return client;
  }

  it("an agent over HTTP: create → start → write → exec → read → edit → stop, with bounded output", async () => {
    const client = await httpClient(alice);
    try {
      const created = ok(await call(client, "create_repl", { name: "agent", template: "node" }));
      const replId = (created.repl as Structured).repl_id as string;
      assert.match(
        errorText(await call(client, "read_file", { repl_id: replId, path: "index.js" })),
        /call start_repl/,
      );
      const started = ok(await call(client, "start_repl", { repl_id: replId }));
      assert.equal((started.repl as Structured).status, "running");

      ok(await call(client, "write_file", { repl_id: replId, path: "src/main.js", content: "console.log(6 * 7);\n" }));
      const exec = ok(await call(client, "exec", { repl_id: replId, command: "node src/main.js && echo oops >&2" }));
      assert.equal(exec.exit_code, 0);
      assert.equal(exec.stdout, "42\n");
      assert.equal(exec.stderr, "oops\n");

      const flood = ok(await call(client, "exec", { repl_id: replId, command: "seq 1 200000" }));
      assert.ok((flood.stdout as string).length <= 16_000);
      assert.match(flood.note as string, /stdout: the first \d+ of \d+ characters were cut/);
      assert.match(flood.stdout as string, /200000\n$/);

      const read = ok(await call(client, "read_file", { repl_id: replId, path: "src/main.js" }));
      assert.equal(read.content, "console.log(6 * 7);\n", "the final newline is part of the file");
      const edit = ok(
        await call(client, "edit_file", {
          repl_id: replId,
          path: "src/main.js",
          edits: [{ old_text: "6 * 7", new_text: "6 * 9" }],
        }),
      );
      assert.match(edit.diff as string, /-console\.log\(6 \* 7\);\n\+console\.log\(6 \* 9\);/);
      const tree = ok(await call(client, "directory_tree", { repl_id: replId }));
      assert.match(tree.tree as string, /src\/\n {2}main\.js/);

      const refusal = errorText(
        await call(client, "write_file", { repl_id: replId, path: "../outside.txt", content: "x" }),
      );
      assert.match(refusal, /outside|workspace|\.\./i);
      assert.doesNotMatch(refusal, /internal/i);

      const stopped = ok(await call(client, "stop_repl", { repl_id: replId }));
      assert.equal((stopped.repl as Structured).status, "stopped");
      ok(await call(client, "delete_repl", { repl_id: replId }));
    } finally {
      await client.close();
    }
  });

  it("keeps users apart: bob cannot see or touch alice's repl, and learns his own repl ids", async () => {
    const a = await httpClient(alice);
    const b = await httpClient(bob);
    try {
      const replId = (ok(await call(a, "create_repl", { name: "private", template: "python" })).repl as Structured)
        .repl_id as string;
      const bobs = ok(await call(b, "list_repls", {}));
      assert.deepEqual(bobs.repls, []);
      const denied = errorText(await call(b, "start_repl", { repl_id: replId }));
      assert.match(denied, /not found\. You have no repls/);
      const stillThere = ok(await call(a, "get_repl_status", { repl_id: replId }));
      assert.equal((stillThere.repl as Structured).status, "stopped");
      ok(await call(a, "delete_repl", { repl_id: replId }));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("reads and sets a repl's network policy: create_repl takes one, set_network_policy changes it, errors name the bad entry", async () => {
    // A user of its own, so that the repls here leave the others' quota alone.
    const token = (await issueApiToken(env.e.state, "carol", "agent")).secret;
    const core = coreClientsFor(env.e.core.url, { token });
    const client = await httpClient(token);
    const other = await httpClient(bob);
    try {
      const created = ok(
        await call(client, "create_repl", {
          name: "net",
          template: "node",
          network: { mode: "allowlist", domains: ["Registry.npmjs.org"], cidrs: ["10.1.0.0/16"] },
        }),
      ).repl as Structured;
      const replId = created.repl_id as string;
      assert.equal(created.network_mode, "allowlist");
      const got = ok(await call(client, "get_network_policy", { repl_id: replId }));
      assert.deepEqual(got.policy, { mode: "allowlist", domains: ["registry.npmjs.org"], cidrs: ["10.1.0.0/16"] });
      assert.ok((got.denied_cidrs as string[]).includes("169.254.0.0/16"), `denied: ${got.denied_cidrs}`);

      const sealed = ok(await call(client, "set_network_policy", { repl_id: replId, policy: { mode: "deny_all" } }));
      assert.equal((sealed.policy as Structured).mode, "deny_all");
      assert.equal((await core.repls.getRepl({ replId })).repl?.egress?.mode, EgressMode.DENY_ALL);
      const listed = ok(await call(client, "list_repls", {})).repls as Structured[];
      assert.equal(listed.find((r) => r.repl_id === replId)?.network_mode, "deny_all");

      const opened = ok(
        await call(client, "set_network_policy", {
          repl_id: replId,
          policy: { mode: "allow_all", cidrs: ["192.168.7.0/24"] },
        }),
      );
      assert.deepEqual(opened.policy, { mode: "allow_all", domains: [], cidrs: ["192.168.7.0/24"] });
      const reset = ok(await call(client, "set_network_policy", { repl_id: replId, policy: { mode: "default" } }));
      assert.deepEqual(reset.policy, { mode: "allow_all", domains: [], cidrs: [] }, "the server's default");

      const before = (await core.repls.getRepl({ replId })).repl?.egress;
      const badName = { mode: "allowlist", domains: ["bad_name!"] };
      assert.match(
        errorText(await call(client, "set_network_policy", { repl_id: replId, policy: badName })),
        /"bad_name!" is not a domain name/,
      );
      const metadata = { mode: "allowlist", cidrs: ["169.254.169.254"] };
      assert.match(
        errorText(await call(client, "set_network_policy", { repl_id: replId, policy: metadata })),
        /169\.254\.169\.254\/32 is always denied/,
      );
      const listsWithDefault = { mode: "default", domains: ["example.com"] };
      assert.match(
        errorText(await call(client, "set_network_policy", { repl_id: replId, policy: listsWithDefault })),
        /need mode "allowlist" or "allow_all"/,
      );
      await assert.rejects(
        call(client, "set_network_policy", { repl_id: replId, policy: { mode: "sideways" } }),
        /invalid arguments for set_network_policy: policy\.mode: /,
      );
      assert.deepEqual((await core.repls.getRepl({ replId })).repl?.egress, before, "refusals change nothing");

      assert.match(errorText(await call(other, "get_network_policy", { repl_id: replId })), /not found/);
      assert.match(
        errorText(await call(other, "set_network_policy", { repl_id: replId, policy: { mode: "deny_all" } })),
        /not found/,
      );
      ok(await call(client, "delete_repl", { repl_id: replId }));
    } finally {
      await client.close();
      await other.close();
    }
  });

  it("works over the in-memory transport with terminals and background processes", async () => {
    const caller = await env.app.authenticate(alice);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: "in-memory", version: "1" });
    await env.app.serverFor(caller).connect(serverSide);
    await client.connect(clientSide);
    try {
      const replId = (ok(await call(client, "create_repl", { name: "term", template: "node" })).repl as Structured)
        .repl_id as string;
      ok(await call(client, "start_repl", { repl_id: replId }));
      const terminal = ok(await call(client, "create_terminal", { repl_id: replId })).terminal as Structured;
      const typed = ok(
        await call(client, "send_terminal_input", {
          repl_id: replId,
          terminal_id: terminal.terminal_id,
          input: "echo $((40 + 2))\n",
          wait_ms: 1500,
        }),
      );
      assert.match(typed.output as string, /^42$/m);
      assert.ok(!(typed.output as string).includes(`${String.fromCharCode(27)}[`), "escape sequences are removed");

      const proc = ok(
        await call(client, "start_process", {
          repl_id: replId,
          command: "for i in 1 2 3; do echo tick $i; done; sleep 30",
        }),
      ).process as Structured;
      let output = "";
      for (let i = 0; i < 50 && !output.includes("tick 3"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        output = ok(await call(client, "read_process_output", { repl_id: replId, process_id: proc.process_id }))
          .output as string;
      }
      assert.match(output, /tick 1\ntick 2\ntick 3/);
      const killed = ok(await call(client, "kill_process", { repl_id: replId, process_id: proc.process_id }));
      assert.equal((killed.process as Structured).process_id, proc.process_id);
      const preview = ok(await call(client, "get_preview_url", { repl_id: replId, port: 3000 }));
      assert.match(preview.url as string, new RegExp(`${replId}\\b.*/preview/3000/\\?token=`));
      assert.equal(preview.visibility, "private");
      // The link carries the preview-only credential, never the runner access token.
      const linkToken = new URL(preview.url as string).searchParams.get("token")!;
      assert.deepEqual(JSON.parse(Buffer.from(linkToken.split(".")[1], "base64url").toString()).scope, ["preview"]);
      // Sharing: a port shared by link gets links for that port only; private again, none.
      const shared = ok(
        await call(client, "set_preview_visibility", { repl_id: replId, port: 3000, visibility: "link" }),
      );
      assert.deepEqual(shared, { visibility: "private", ports: [{ port: 3000, visibility: "link" }] });
      assert.equal(ok(await call(client, "get_preview_url", { repl_id: replId, port: 3000 })).visibility, "link");
      const link = ok(await call(client, "create_preview_link", { repl_id: replId, port: 3000, ttl_seconds: 600 }));
      const claims = JSON.parse(
        Buffer.from(new URL(link.url as string).searchParams.get("token")!.split(".")[1], "base64url").toString(),
      );
      assert.deepEqual([claims.scope, claims.port, claims.exp - claims.iat], [["preview"], 3000, 600]);
      assert.ok(Math.abs(Date.parse(link.expire_time as string) - claims.exp * 1000) < 1000);
      ok(await call(client, "set_preview_visibility", { repl_id: replId, port: 3000, visibility: "default" }));
      const refused = await call(client, "create_preview_link", { repl_id: replId, port: 3000 });
      assert.equal(refused.isError, true);
      assert.match(JSON.stringify(refused.content), /private: share it by link first/);

      // Environment: a plain variable and a write-only secret, which new commands get within a second.
      const secretValue = "agent-secret-7f3a";
      ok(await call(client, "set_environment_variable", { repl_id: replId, name: "GREETING", value: "hello" }));
      const afterSecret = ok(
        await call(client, "set_environment_variable", {
          repl_id: replId,
          name: "API_KEY",
          value: secretValue,
          secret: true,
        }),
      );
      assert.doesNotMatch(JSON.stringify(afterSecret), new RegExp(secretValue));
      const listedVars = await call(client, "list_environment_variables", { repl_id: replId });
      assert.doesNotMatch(JSON.stringify(listedVars), new RegExp(secretValue));
      const vars = ok(listedVars).variables as Structured[];
      assert.deepEqual(
        vars.map((v) => [v.name, v.value ?? "", v.secret ?? false]),
        [
          ["API_KEY", "", true],
          ["GREETING", "hello", false],
        ],
      );
      assert.ok(vars.every((v) => Date.parse(v.update_time as string) > Date.now() - 60_000));
      await execUntil(client, replId, "printenv GREETING API_KEY", `hello\n${secretValue}\n`);
      assert.match(
        errorText(await call(client, "set_environment_variable", { repl_id: replId, name: "HOME", value: "/x" })),
        /HOME is set by the repl itself/,
      );
      const deleted = ok(await call(client, "delete_environment_variable", { repl_id: replId, name: "GREETING" }));
      assert.deepEqual(
        (deleted.variables as Structured[]).map((v) => v.name),
        ["API_KEY"],
      );
      ok(await call(client, "delete_environment_variable", { repl_id: replId, name: "GREETING" }));
      await execUntil(client, replId, "printenv GREETING || echo unset", "unset\n");
      assert.match(
        errorText(await call(client, "list_environment_variables", { repl_id: "no-such-repl" })),
        /no-such-repl/,
      );
      ok(await call(client, "delete_repl", { repl_id: replId }));
    } finally {
      await client.close();
    }
  });

  it("templates: save a stopped repl as a private template, create from it (setup runs once), delete it", async () => {
    // A user of their own: a repl and one made from its template fill the quota of two.
    const tina = (await issueApiToken(env.e.state, "tina", "agent")).secret;
    const client = await httpClient(tina);
    try {
      const source = ok(await call(client, "create_repl", { name: "source", template: "node" }));
      const sourceId = (source.repl as Structured).repl_id as string;
      ok(await call(client, "start_repl", { repl_id: sourceId }));
      ok(
        await call(client, "write_file", { repl_id: sourceId, path: "serve.js", content: "console.log('served');\n" }),
      );
      const args = {
        repl_id: sourceId,
        title: "Agent starter",
        description: "made by an agent",
        run_command: "node serve.js",
        setup_command: "echo ran >> .setup-count",
        preview_port: 5173,
      };
      assert.match(errorText(await call(client, "save_template", args)), /is running: .*call stop_repl first/);
      ok(await call(client, "stop_repl", { repl_id: sourceId }));
      const saved = ok(await call(client, "save_template", args)).template as Structured;
      assert.equal(saved.owner, "you");
      assert.equal(saved.title, "Agent starter");
      assert.equal(saved.setup_command, "echo ran >> .setup-count");
      assert.equal(saved.preview_port, 5173);
      const name = saved.name as string;

      const listed = (ok(await call(client, "list_templates", {})).templates as Structured[]).map((t) => [
        t.name,
        t.owner,
      ]);
      assert.deepEqual(
        listed.filter(([, owner]) => owner === "you"),
        [[name, "you"]],
      );
      assert.ok(listed.some(([n, owner]) => n === "node" && owner === "operator"));
      const asBob = await httpClient(bob);
      const bobs = ok(await call(asBob, "list_templates", {})).templates as Structured[];
      await asBob.close();
      assert.ok(!bobs.some((t) => t.name === name), "another user does not see it");

      const copy = ok(await call(client, "create_repl", { name: "copy", template: name })).repl as Structured;
      const copyId = copy.repl_id as string;
      assert.equal(copy.template, name);
      assert.equal(copy.run_command, "node serve.js");
      assert.equal(copy.preview_port, 5173);
      assert.deepEqual(copy.setup, {
        command: "echo ran >> .setup-count",
        status: "pending",
        exit_code: 0,
        message: "",
      });
      ok(await call(client, "start_repl", { repl_id: copyId }));
      const deadline = Date.now() + 20_000;
      let setup: Structured | undefined;
      for (;;) {
        setup = (ok(await call(client, "get_repl_status", { repl_id: copyId })).repl as Structured).setup as Structured;
        if (setup?.status === "succeeded" || setup?.status === "failed" || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(setup?.status, "succeeded", JSON.stringify(setup));
      const run = ok(await call(client, "exec", { repl_id: copyId, command: "cat .setup-count; node serve.js" }));
      assert.equal(run.stdout, "ran\nserved\n", "the setup ran once, and the saved files came along");
      ok(await call(client, "stop_repl", { repl_id: copyId }));
      ok(await call(client, "start_repl", { repl_id: copyId }));
      const again = ok(await call(client, "exec", { repl_id: copyId, command: "cat .setup-count" }));
      assert.equal(again.stdout, "ran\n", "not again on the next start");

      assert.deepEqual(ok(await call(client, "delete_template", { name })), { name });
      assert.match(
        errorText(await call(client, "delete_template", { name: "node" })),
        /server's templates cannot be deleted/,
      );
      const after = ok(await call(client, "list_templates", {})).templates as Structured[];
      assert.ok(!after.some((t) => t.name === name));
      assert.match(
        (ok(await call(client, "read_file", { repl_id: copyId, path: "serve.js" })).content as string) ?? "",
        /served/,
        "a repl made from a deleted template keeps its files",
      );
      for (const id of [sourceId, copyId]) ok(await call(client, "delete_repl", { repl_id: id }));
    } finally {
      await client.close();
    }
  });

  it("works over stdio with the token from the environment", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ["--import", "tsx", join(root, "services/mcp/src/stdio.ts")],
      env: {
        PATH: process.env.PATH ?? "",
        DEVEX_CORE_URL: env.e.core.url,
        DEVEX_TOKEN: alice,
        DEVEX_LOG_LEVEL: "silent",
      },
      cwd: root,
      stderr: "pipe",
    });
    const client = new Client({ name: "stdio", version: "1" });
    await client.connect(transport);
    try {
      const templates = ok(await call(client, "list_templates", {}));
      const names = (templates.templates as Structured[]).map((t) => t.name);
      assert.ok(names.includes("node") && names.includes("python"), `templates: ${names}`);
    } finally {
      await client.close();
    }
  });

  it("answers a wrong token with 401", async () => {
    const res = await fetch(env.endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: "Bearer dvx_not-a-real-token",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
  });

  it("serves the official MCP Inspector CLI (v2) over HTTP with a bearer token: create → start → write → exec → read → stop", async function () {
    this.timeout(300_000);
    const inspector = (method: string, tool?: string, args: Record<string, string> = {}) =>
      inspectorCli(this, env.endpoint, alice, method, tool, args);
    const listed = await inspector("tools/list");
    assert.equal(listed.tools?.length, 46);
    const created = await inspector("tools/call", "create_repl", { name: "inspector", template: "node" });
    const replId = (created.structuredContent!.repl as Structured).repl_id as string;
    assert.ok(replId);
    await inspector("tools/call", "start_repl", { repl_id: replId });
    await inspector("tools/call", "write_file", { repl_id: replId, path: "hello.txt", content: "from the inspector" });
    const exec = await inspector("tools/call", "exec", { repl_id: replId, command: "cat hello.txt | tr a-z A-Z" });
    assert.equal(exec.structuredContent?.stdout, "FROM THE INSPECTOR");
    const read = await inspector("tools/call", "read_file", { repl_id: replId, path: "hello.txt" });
    assert.equal(read.structuredContent?.content, "from the inspector");
    const stopped = await inspector("tools/call", "stop_repl", { repl_id: replId });
    assert.equal((stopped.structuredContent!.repl as Structured).status, "stopped");
    await inspector("tools/call", "delete_repl", { repl_id: replId });
  });
});
