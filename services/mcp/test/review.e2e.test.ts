/**
 * Regression from the review of issue 21, against the embedded setup (core, the local driver and
 * real runner processes): opening sessions past DEVEX_MCP_SESSIONS_PER_USER closed the user's least
 * recently used session even while a tool call ran in it, which aborted the call (the command was
 * killed) and ended its stream without a result. A session with a call in flight is in use.
 */
import assert from "node:assert/strict";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

const protocol = "2025-11-25";

describe("review of issue 21: sessions over the per-user limit (embedded setup)", function () {
  this.timeout(180_000);
  let env: EmbeddedMcp;
  let alice: string;
  let endpoint: string;

  before(async () => {
    env = await startEmbeddedMcp(["alice"], { sessionsPerUser: 2 });
    endpoint = env.endpoint;
    alice = env.tokens.alice;
  });
  after(async () => {
    await env?.close();
  });

  const post = (body: unknown, session?: string) =>
    fetch(endpoint, {
      method: "POST",
      headers: {
        authorization: `Bearer ${alice}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": protocol,
        ...(session && { "mcp-session-id": session }),
      },
      body: JSON.stringify(body),
    });

  async function openSession(): Promise<string> {
    const init = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: protocol, capabilities: {}, clientInfo: { name: "review", version: "1" } },
    });
    const session = init.headers.get("mcp-session-id");
    await init.text();
    assert.ok(session);
    await (await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session)).text();
    return session;
  }

  /** The tool's structured result from an SSE body, or undefined if the stream ended without one. */
  const resultIn = (sse: string, id: number): Record<string, unknown> | undefined =>
    sse
      .split("\n")
      .filter((line) => line.startsWith("data: {"))
      .map((line) => JSON.parse(line.slice(6)))
      .find((m) => m.id === id)?.result?.structuredContent;

  async function callTool(session: string, id: number, name: string, args: Record<string, unknown>) {
    const sse = await (
      await post({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } }, session)
    ).text();
    const result = resultIn(sse, id);
    assert.ok(result, `no result for ${name}: ${sse.slice(0, 300)}`);
    return result;
  }

  it("does not close a session, and abort its call, while a tool runs in it", async () => {
    const busy = await openSession();
    const { repl } = (await callTool(busy, 2, "create_repl", { name: "review", template: "node" })) as {
      repl: { repl_id: string };
    };
    await callTool(busy, 3, "start_repl", { repl_id: repl.repl_id });

    const running = post(
      {
        jsonrpc: "2.0",
        id: 4,
        method: "tools/call",
        params: { name: "exec", arguments: { repl_id: repl.repl_id, command: "sleep 2; echo finished" } },
      },
      busy,
    );
    await new Promise((r) => setTimeout(r, 500));
    // Two more sessions: with a limit of 2 the busy one is the least recently used. The first
    // closes nothing (one session is open), the second closes the first new one (idle), not the busy one.
    const idle = await openSession();
    const third = await openSession();
    assert.equal((await post({ jsonrpc: "2.0", id: 5, method: "ping" }, idle)).status, 404, "the idle one made room");

    // Both sessions busy: a new one is refused, saying why, rather than aborting a call.
    const second = post(
      {
        jsonrpc: "2.0",
        id: 6,
        method: "tools/call",
        params: { name: "exec", arguments: { repl_id: repl.repl_id, command: "sleep 1" } },
      },
      third,
    );
    await new Promise((r) => setTimeout(r, 300));
    const refused = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: protocol, capabilities: {}, clientInfo: { name: "review", version: "1" } },
    });
    assert.equal(refused.status, 429);
    assert.match((await refused.json()).error.message, /2 MCP sessions with calls running/);

    const sse = await (await running).text();
    assert.equal(resultIn(sse, 4)?.stdout, "finished\n", `the call ran to its end: ${sse.slice(0, 300)}`);
    await (await second).text();
  });
});
