/**
 * The MCP HTTP layer: bearer auth with RFC 9728 metadata, Host/Origin checks, sessions bound to
 * their user, protocol errors for misuse. The SDK client talks to a real server on a socket; the
 * authenticator is a stand-in for core here (tools that need core and a runner are covered by the
 * end-to-end tests).
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, type McpError } from "@modelcontextprotocol/sdk/types.js";
import { ALL_API_SCOPES } from "../../../lib/contracts/api-scopes.js";
import { loadContracts } from "../../../lib/contracts/registry.js";
import { unauthenticated } from "../../../lib/kit/errors.js";
import { createLogger } from "../../../lib/kit/log.js";
import { type RunningServer, startServer } from "../../../lib/kit/server.js";
import { createMcpHttp, type McpHttp } from "../src/http.js";
import { createMcpServer } from "../src/mcp-server.js";
import { createAgentTools } from "../src/tools/agent-tools.js";
import { buildToolCatalog } from "../src/tools/catalog.js";

const users: Record<string, string> = { "tok-alice": "alice", "tok-bob": "bob" };

async function startMcp(
  stateless: boolean,
  sessionsPerUser = 32,
): Promise<{ server: RunningServer; mcp: McpHttp; url: string }> {
  const log = createLogger("mcp-test", { level: "silent" });
  const catalog = buildToolCatalog(loadContracts());
  const tools = createAgentTools({
    core: () => {
      throw new Error("core is not part of this test");
    },
    runner: () => {
      throw new Error("no runner in this test");
    },
  });
  let mcp!: McpHttp;
  const server = await startServer({
    name: "mcp-test",
    port: 0,
    log,
    routes() {},
    http: (req, res) => mcp.handler(req, res),
  });
  mcp = createMcpHttp({
    path: "/mcp",
    publicUrl: server.url,
    authorizationServer: "http://127.0.0.1:1/core",
    allowedHosts: [],
    allowedOrigins: ["http://allowed.example"],
    stateless,
    sessionIdleMs: 60_000,
    sseRetryMs: 200,
    sessionsPerUser,
    async authenticate(token) {
      const userId = users[token];
      if (!userId) throw unauthenticated("invalid or expired API token");
      return { token, userId, scopes: [...ALL_API_SCOPES] };
    },
    serverFor: (caller) => createMcpServer({ catalog, tools, log, version: "test" }, caller),
    log,
  });
  return { server, mcp, url: `${server.url}/mcp` };
}

async function connect(
  url: string,
  token: string,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "test", version: "1" });
  await client.connect(transport);
  return { client, transport };
}

const initialize = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});
const jsonHeaders = { "content-type": "application/json", accept: "application/json, text/event-stream" };

describe("MCP over Streamable HTTP", () => {
  let env: Awaited<ReturnType<typeof startMcp>>;
  before(async () => {
    env = await startMcp(false);
  });
  after(async () => {
    await env.mcp.close();
    await env.server.close();
  });

  it("answers 401 with a WWW-Authenticate pointing at protected-resource metadata", async () => {
    const none = await fetch(env.url, { method: "POST", headers: jsonHeaders, body: initialize });
    assert.equal(none.status, 401);
    const challenge = none.headers.get("www-authenticate") ?? "";
    assert.match(
      challenge,
      /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"$/,
    );
    const wrong = await fetch(env.url, {
      method: "POST",
      headers: { ...jsonHeaders, authorization: "Bearer nope" },
      body: initialize,
    });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get("www-authenticate") ?? "", /error="invalid_token"/);

    const metadata = await (await fetch(challenge.match(/"(.*?)"/)![1])).json();
    assert.equal(metadata.resource, env.url);
    assert.deepEqual(metadata.authorization_servers, ["http://127.0.0.1:1/core"]);
  });

  it("refuses foreign Host and Origin headers (DNS rebinding)", async () => {
    const origin = await fetch(env.url, {
      method: "POST",
      headers: { ...jsonHeaders, authorization: "Bearer tok-alice", origin: "http://evil.example" },
      body: initialize,
    });
    assert.equal(origin.status, 403);
    const { request } = await import("node:http");
    const withHost = (host: string, origin?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(env.url, {
          method: "POST",
          headers: { ...jsonHeaders, authorization: "Bearer tok-alice", host, ...(origin && { origin }) },
        });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end(initialize);
      });
    assert.equal(await withHost("evil.example"), 403);
    assert.equal(await withHost("localhost.evil.example:80"), 403);
    assert.equal(await withHost("127.0.0.1:1", "http://127.0.0.1.evil.example:1"), 403);
    const allowed = await fetch(env.url, {
      method: "POST",
      headers: { ...jsonHeaders, authorization: "Bearer tok-alice", origin: "http://allowed.example" },
      body: initialize,
    });
    assert.equal(allowed.status, 200);
    // A local server: the loopback names on any port are the same server (MCP spec), and local
    // browser-based clients run on ports of their own.
    assert.equal(await withHost("localhost:1", "http://localhost:5173"), 200);
    assert.equal(await withHost("[::1]:9", "https://127.0.0.1:3000"), 200);
  });

  it("lists the tools derived from the contracts, with annotations and schemas", async () => {
    const { client } = await connect(env.url, "tok-alice");
    try {
      const { tools } = await client.listTools();
      assert.equal(tools.length, 46);
      const write = tools.find((t) => t.name === "write_file")!;
      assert.equal(write.annotations?.destructiveHint, true);
      assert.deepEqual((write.inputSchema.required as string[]).sort(), ["path", "repl_id"]);
      assert.ok(write.outputSchema);
      assert.match(write.description ?? "", /expected_version/);
    } finally {
      await client.close();
    }
  });

  it("treats an unknown tool and arguments that break the schema as protocol errors", async () => {
    const { client } = await connect(env.url, "tok-alice");
    try {
      await assert.rejects(
        client.callTool({ name: "format_disk", arguments: {} }),
        (e: McpError) => e.code === ErrorCode.InvalidParams && /unknown tool/.test(e.message),
      );
      await assert.rejects(
        client.callTool({ name: "read_file", arguments: { repl_id: "../etc", path: "x" } }),
        (e: McpError) => e.code === ErrorCode.InvalidParams && /repl_id/.test(e.message),
      );
      await assert.rejects(
        client.callTool({ name: "read_file", arguments: { repl_id: "r1", path: "x", bogus: 1 } }),
        (e: McpError) => e.code === ErrorCode.InvalidParams && /bogus/.test(e.message),
      );
    } finally {
      await client.close();
    }
  });

  it("says what is wrong with arguments once, plainly: one prefix, missing as missing, controls escaped", async () => {
    const { client } = await connect(env.url, "tok-alice");
    const message = async (name: string, args: Record<string, unknown>) => {
      const e = (await client.callTool({ name, arguments: args }).then(
        () => assert.fail(`${name} should be refused`),
        (err: unknown) => err,
      )) as McpError;
      assert.equal(e.code, ErrorCode.InvalidParams);
      return e.message;
    };
    try {
      assert.equal(
        await message("read_file", { repl_id: "r1" }),
        "MCP error -32602: invalid arguments for read_file: path is required",
      );
      assert.equal(
        await message("edit_file", { repl_id: "r1", path: "a.txt", edits: [{ new_text: "x" }] }),
        "MCP error -32602: invalid arguments for edit_file: edits[0].old_text is required",
      );
      // port has no default: the schema lists it as required, and leaving it out says so.
      assert.equal(
        await message("get_preview_url", { repl_id: "r1" }),
        "MCP error -32602: invalid arguments for get_preview_url: port is required",
      );
      const nul = await message("read_file", { repl_id: "r1", path: "a\u0000b" });
      assert.ok(!nul.includes("\u0000"), "no raw NUL");
      assert.match(nul, /^MCP error -32602: invalid arguments for read_file: path: .*\\u0000/);
      const ansi = await message("\u001b[31mred", {});
      assert.equal(ansi, 'MCP error -32602: unknown tool "\\u001b[31mred"');
      assert.equal(
        await message("write_file", { repl_id: "r1", path: "a", content: "", encoding: "hex" }),
        "MCP error -32602: invalid arguments for write_file: encoding: must be in list [utf-8, base64]",
      );
      for (const text of [nul, ansi]) assert.equal(text.match(/MCP error/g)?.length, 1, text);
    } finally {
      await client.close();
    }
  });

  it("binds a session to its user: another user's token cannot use it", async () => {
    const { client, transport } = await connect(env.url, "tok-alice");
    try {
      assert.ok(transport.sessionId);
      assert.equal(env.mcp.sessions >= 1, true);
      const hijack = await fetch(env.url, {
        method: "POST",
        headers: { ...jsonHeaders, authorization: "Bearer tok-bob", "mcp-session-id": transport.sessionId! },
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
      });
      assert.equal(hijack.status, 404);
      assert.ok((await client.listTools()).tools.length > 0, "the owner's session still works");
    } finally {
      await client.close();
    }
  });
});

describe("MCP over Streamable HTTP, sessions per user", () => {
  let env: Awaited<ReturnType<typeof startMcp>>;
  before(async () => {
    env = await startMcp(false, 2);
  });
  after(async () => {
    await env.mcp.close();
    await env.server.close();
  });

  it("closes a user's least recently used session when they open one over the limit, and no one else's", async () => {
    const bob = await connect(env.url, "tok-bob");
    const alice = [await connect(env.url, "tok-alice"), await connect(env.url, "tok-alice")];
    await new Promise((r) => setTimeout(r, 5));
    await alice[0].client.listTools(); // the first is now used more recently than the second
    alice.push(await connect(env.url, "tok-alice"));
    const listWith = async (token: string, session: string) =>
      (
        await fetch(env.url, {
          method: "POST",
          headers: { ...jsonHeaders, authorization: `Bearer ${token}`, "mcp-session-id": session },
          body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
        })
      ).status;
    try {
      assert.equal(await listWith("tok-alice", alice[1].transport.sessionId!), 404, "the least recently used went");
      assert.equal(await listWith("tok-alice", alice[0].transport.sessionId!), 200);
      assert.equal(await listWith("tok-alice", alice[2].transport.sessionId!), 200);
      assert.equal(await listWith("tok-bob", bob.transport.sessionId!), 200, "bob's session is his own count");
      assert.equal(env.mcp.sessions, 3);
    } finally {
      for (const c of [bob, ...alice]) await c.client.close();
    }
  });
});

describe("MCP over Streamable HTTP, stateless", () => {
  let env: Awaited<ReturnType<typeof startMcp>>;
  before(async () => {
    env = await startMcp(true);
  });
  after(async () => {
    await env.mcp.close();
    await env.server.close();
  });

  it("serves tools without sessions", async () => {
    const { client, transport } = await connect(env.url, "tok-bob");
    try {
      assert.equal(transport.sessionId, undefined);
      assert.equal((await client.listTools()).tools.length, 46);
      assert.equal(env.mcp.sessions, 0);
    } finally {
      await client.close();
    }
  });
});
