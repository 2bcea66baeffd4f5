/**
 * What an agent sees while a long tool runs, against the embedded setup (core, the local driver and
 * real runner processes): log messages at the level it chose, progress when it sends a progress
 * token, and resumable streams: a connection cut during a long exec is resumed with Last-Event-ID
 * (by hand over raw HTTP, and by the SDK client on its own through a forwarder that drops every
 * connection), and the whole output arrives exactly once.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  type CallToolResult,
  LoggingMessageNotificationSchema,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import { type BearerForwarder, startBearerForwarder } from "../../../lib/testing/bearer-forwarder.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

type Structured = Record<string, unknown>;
const RETRY_MS = 200;
const protocol = "2025-11-25";

/** `lines` lines "line 1".."line N", a few milliseconds apart, so a run lasts a couple of seconds. */
const slowCommand = (lines: number) => `for i in $(seq 1 ${lines}); do echo "line $i"; sleep 0.04; done`;
const slowOutput = (lines: number) => Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join("");

interface SseEvent {
  id?: string;
  retry?: number;
  data: string;
}

/** The events of an SSE body as they arrive (comments skipped). */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    buffer += decoder.decode(r.value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = { data: "" };
      let fields = 0;
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon === 0) continue;
        const [name, value] = [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, "")];
        fields++;
        if (name === "id") event.id = value;
        else if (name === "retry") event.retry = Number(value);
        else if (name === "data") event.data += value;
      }
      if (fields) yield event;
    }
  }
}

describe("MCP streams: logs, progress and resumption (embedded setup)", function () {
  this.timeout(180_000);
  let env: EmbeddedMcp;
  let alice: string;
  let bob: string;
  let endpoint: string;
  let replId: string;
  let setup: Client;

  before(async () => {
    env = await startEmbeddedMcp(["alice", "bob"], { sseRetryMs: RETRY_MS });
    endpoint = env.endpoint;
    ({ alice, bob } = env.tokens);
    setup = await sdkClient(endpoint, alice);
    replId = ((await call(setup, "create_repl", { name: "streams", template: "node" })).repl as Structured)
      .repl_id as string;
    await call(setup, "start_repl", { repl_id: replId });
  });
  after(async () => {
    await setup?.close();
    await env?.close();
  });

  async function sdkClient(url: string, token?: string): Promise<Client> {
    const client = new Client({ name: "streams-e2e", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : undefined,
        reconnectionOptions: {
          initialReconnectionDelay: 100,
          maxReconnectionDelay: 1_000,
          reconnectionDelayGrowFactor: 1.5,
          maxRetries: 5,
        },
      }),
    );
    return client;
  }

  async function call(client: Client, name: string, args: Structured): Promise<Structured> {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    assert.ok(!result.isError, JSON.stringify(result.content));
    return result.structuredContent as Structured;
  }

  it("sends a command's output as log messages at the chosen level, none before a level is chosen or below it", async () => {
    const client = await sdkClient(endpoint, alice);
    const logs: { level: string; logger?: string; data: unknown }[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    try {
      await call(client, "exec", { repl_id: replId, command: "echo quiet" });
      assert.equal(logs.length, 0, "no level chosen yet: nothing is logged");

      await client.setLoggingLevel("info");
      const command = "seq 1 20000; echo to-stderr >&2";
      const out = await call(client, "exec", { repl_id: replId, command });
      const stdout = logs.filter((l) => l.logger === "stdout").map((l) => l.data);
      const expected = Array.from({ length: 20_000 }, (_, i) => `${i + 1}\n`).join("");
      assert.equal(stdout.join(""), expected, "the log messages carry the output exactly");
      assert.ok(stdout.length < 50, `gathered into a few messages, not one a line (${stdout.length})`);
      assert.ok(
        stdout.every((d) => typeof d === "string" && d.endsWith("\n")),
        "whole lines",
      );
      assert.deepEqual(
        logs.filter((l) => l.logger === "stderr").map((l) => l.data),
        ["to-stderr\n"],
      );
      assert.ok(logs.every((l) => l.level === "info"));
      assert.match(out.stdout as string, /20000\n$/);

      logs.length = 0;
      await client.setLoggingLevel("warning");
      await call(client, "exec", { repl_id: replId, command: "echo below-the-level" });
      assert.equal(logs.length, 0, "info is below warning");
    } finally {
      await client.close();
    }
  });

  it("reports progress of exec (seconds of the timeout, output so far), stop_repl (persist) and start_repl (restore)", async () => {
    const client = await sdkClient(endpoint, alice);
    try {
      const progress: Progress[] = [];
      const exec = (await client.callTool(
        { name: "exec", arguments: { repl_id: replId, command: slowCommand(50), timeout_seconds: 60 } },
        undefined,
        { onprogress: (p) => progress.push(p) },
      )) as CallToolResult;
      assert.equal((exec.structuredContent as Structured).stdout, slowOutput(50));
      assert.ok(progress.length >= 3, `several progress notifications (${progress.length})`);
      assertIncreasing(progress.map((p) => p.progress));
      assert.ok(progress.every((p) => p.total === 60));
      assert.ok(progress.some((p) => /characters of output; last line: line \d+$/.test(p.message ?? "")));
      assert.match(progress.at(-1)?.message ?? "", /last line: line 50$/);

      // A workspace worth restoring: 300 files, stored by the stop, brought back by the start.
      await call(client, "exec", {
        repl_id: replId,
        command: "mkdir -p many && for i in $(seq 1 300); do echo $i > many/f$i; done",
      });
      const stopProgress: Progress[] = [];
      await client.callTool({ name: "stop_repl", arguments: { repl_id: replId } }, undefined, {
        onprogress: (p) => stopProgress.push(p),
      });
      assertIncreasing(stopProgress.map((p) => p.progress));
      const saved = stopProgress.filter((p) => /^saving the workspace/.test(p.message ?? "")).at(-1);
      const [, savedDone, savedTotal] = /(\d+) of (\d+) files/.exec(saved?.message ?? "") ?? [];
      assert.ok(Number(savedTotal) >= 300 && savedDone === savedTotal, JSON.stringify(stopProgress));
      assert.deepEqual(stopProgress.at(-1), { progress: 1, total: 1, message: `repl ${replId} is stopped` });
      const startProgress: Progress[] = [];
      await client.callTool({ name: "start_repl", arguments: { repl_id: replId } }, undefined, {
        onprogress: (p) => startProgress.push(p),
      });
      assertIncreasing(startProgress.map((p) => p.progress));
      assert.ok(startProgress.every((p) => p.total === 1));
      const restore = startProgress.filter((p) => /^restoring the workspace/.test(p.message ?? ""));
      assert.ok(restore.length >= 1, JSON.stringify(startProgress));
      const [, done, total] = /(\d+) of (\d+) files/.exec(restore.at(-1)!.message!) ?? [];
      assert.ok(Number(total) >= 300 && done === total, restore.at(-1)!.message);
      assert.deepEqual(startProgress.at(-1), { progress: 1, total: 1, message: `repl ${replId} is running` });
      const check = await call(client, "exec", { repl_id: replId, command: "ls many | wc -l" });
      assert.equal(check.stdout, "300\n");
    } finally {
      await client.close();
    }
  });

  it("resumes a POST stream cut during a long exec with Last-Event-ID: every event once, the whole output, the result once", async () => {
    const post = (body: unknown, session?: string, signal?: AbortSignal) =>
      fetch(endpoint, {
        method: "POST",
        signal,
        headers: {
          authorization: `Bearer ${alice}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": protocol,
          ...(session && { "mcp-session-id": session }),
        },
        body: JSON.stringify(body),
      });
    const init = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: protocol, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    const session = init.headers.get("mcp-session-id")!;
    assert.ok(session);
    await init.text();
    assert.equal((await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session)).status, 202);
    await (
      await post({ jsonrpc: "2.0", id: 2, method: "logging/setLevel", params: { level: "info" } }, session)
    ).text();

    const cut = new AbortController();
    const callRes = await post(
      {
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: {
          name: "exec",
          arguments: { repl_id: replId, command: slowCommand(60) },
          _meta: { progressToken: "p" },
        },
      },
      session,
      cut.signal,
    );
    assert.match(callRes.headers.get("content-type") ?? "", /text\/event-stream/);
    const seen: SseEvent[] = [];
    const first: SseEvent[] = [];
    try {
      for await (const ev of sseEvents(callRes.body!)) {
        first.push(ev);
        if (/line 10\\n/.test(ev.data)) cut.abort(); // the connection drops mid-call
      }
    } catch (err) {
      assert.equal((err as Error).name, "AbortError");
    }
    seen.push(...first);
    assert.ok(first[0].id && first[0].data === "" && first[0].retry === RETRY_MS, "a priming event opens the stream");
    assert.ok(!first.some((ev) => ev.data.includes('"id":3')), "cut before the result");
    const lastId = first.filter((ev) => ev.id).at(-1)!.id!;

    const resume = (token: string, eventId: string) =>
      fetch(endpoint, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: "text/event-stream",
          "mcp-session-id": session,
          "mcp-protocol-version": protocol,
          "last-event-id": eventId,
        },
      });
    assert.equal((await resume(bob, lastId)).status, 404, "another user cannot resume alice's session");
    assert.equal((await resume(alice, `${lastId}9999`)).status, 400, "an event id never sent is refused");

    await new Promise((r) => setTimeout(r, RETRY_MS));
    const resumed = await resume(alice, lastId);
    assert.equal(resumed.status, 200);
    for await (const ev of sseEvents(resumed.body!)) seen.push(ev);

    const ids = seen.map((ev) => ev.id).filter(Boolean);
    assert.equal(new Set(ids).size, ids.length, "no event twice");
    const messages = seen.filter((ev) => ev.data).map((ev) => JSON.parse(ev.data));
    const logged = messages
      .filter((m) => m.method === "notifications/message" && m.params.logger === "stdout")
      .map((m) => m.params.data)
      .join("");
    assert.equal(logged, slowOutput(60), "the whole output, each line once");
    assertIncreasing(messages.filter((m) => m.method === "notifications/progress").map((m) => m.params.progress));
    const results = messages.filter((m) => m.id === 3);
    assert.equal(results.length, 1, "the result exactly once");
    assert.equal(results[0].result.structuredContent.stdout, slowOutput(60));
    await fetch(endpoint, {
      method: "DELETE",
      headers: { authorization: `Bearer ${alice}`, "mcp-session-id": session },
    });
  });

  it("lets the SDK client resume on its own when every connection is cut during a long exec", async () => {
    const forwarder: BearerForwarder = await startBearerForwarder(env.server.url, alice);
    const client = await sdkClient(`${forwarder.url}/mcp`);
    try {
      const lines: string[] = [];
      let dropped = 0;
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        if (n.params.logger !== "stdout") return;
        lines.push(n.params.data as string);
        if (/line 10\n/.test(n.params.data as string)) dropped += forwarder.cut();
      });
      await client.setLoggingLevel("info");
      const result = (await client.callTool(
        { name: "exec", arguments: { repl_id: replId, command: slowCommand(60) } },
        undefined,
        { timeout: 60_000 },
      )) as CallToolResult;
      assert.equal((result.structuredContent as Structured).stdout, slowOutput(60));
      assert.equal(lines.join(""), slowOutput(60), "every line once, across the cut");
      assert.ok(dropped >= 1, "connections were cut");
      assert.ok(
        forwarder.requests.some((r) => r.method === "GET" && r.lastEventId),
        "the client came back with Last-Event-ID",
      );
    } finally {
      await client.close().catch(() => {});
      await forwarder.close();
    }
  });
});

function assertIncreasing(values: number[]) {
  for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `progress grows: ${values.join(", ")}`);
}
