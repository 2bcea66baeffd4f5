/**
 * The agent transfer tools against an embedded core with a real runner, through a real MCP client:
 * upload_file writes bytes whole and checked (a wrong SHA-256 writes nothing), download_file reads
 * a binary file in byte ranges that reassemble to it, with the whole file's SHA-256 at its end.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { coreClientsFor } from "../../../lib/client/node.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("MCP upload_file and download_file (embedded core, real runner)", function () {
  this.timeout(120_000);
  let env: EmbeddedMcp;
  let client: Client;
  let replId: string;

  const call = async (name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: { repl_id: replId, ...args } })) as CallToolResult;

  before(async () => {
    env = await startEmbeddedMcp(["alice"]);
    const core = coreClientsFor(env.e.core.url, { token: env.tokens.alice });
    replId = (await core.repls.createRepl({ name: "xfer", template: "node" })).repl!.replId;
    await core.repls.startRepl({ replId });
    client = new Client({ name: "agent", version: "1" });
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

  it("uploads binary bytes checked by SHA-256 and downloads them back in ranges", async () => {
    const bytes = randomBytes(700_000);
    const up = await call("upload_file", {
      path: "bin/data.bin",
      content_base64: bytes.toString("base64"),
      sha256: sha(bytes),
    });
    assert.ok(!up.isError, JSON.stringify(up.content));
    assert.deepEqual(up.structuredContent, {
      path: "bin/data.bin",
      size: bytes.length,
      sha256: sha(bytes),
      version: (up.structuredContent as { version: string }).version,
    });
    const parts: Buffer[] = [];
    let offset = 0;
    let version = "";
    for (;;) {
      const r = await call("download_file", {
        path: "bin/data.bin",
        offset,
        length: 300_000,
        expected_version: version,
      });
      assert.ok(!r.isError, JSON.stringify(r.content));
      const out = r.structuredContent as {
        content_base64: string;
        next_offset: number;
        eof: boolean;
        sha256?: string;
        version: string;
      };
      version = out.version;
      parts.push(Buffer.from(out.content_base64, "base64"));
      offset = out.next_offset;
      if (out.eof) {
        assert.equal(out.sha256, sha(bytes));
        break;
      }
      assert.ok(!out.sha256, "no digest before the end");
    }
    assert.equal(parts.length, 3);
    assert.deepEqual(Buffer.concat(parts), bytes);
  });

  it("a wrong SHA-256 writes nothing; create_only keeps an existing file; a range past the end is refused", async () => {
    const bytes = Buffer.from("payload");
    const bad = await call("upload_file", {
      path: "bad.bin",
      content_base64: bytes.toString("base64"),
      sha256: sha(Buffer.from("x")),
    });
    assert.equal(bad.isError, true);
    assert.match((bad.content[0] as { text: string }).text, /SHA-256/);
    const stat = await call("stat_file", { path: "bad.bin" });
    assert.equal(stat.isError, true, "nothing under the name");
    await call("upload_file", { path: "keep.txt", content_base64: Buffer.from("first").toString("base64") });
    const again = await call("upload_file", { path: "keep.txt", content_base64: "c2Vjb25k", create_only: true });
    assert.equal(again.isError, true);
    const read = await call("read_file", { path: "keep.txt" });
    assert.equal((read.structuredContent as { content: string }).content, "first");
    const past = await call("download_file", { path: "keep.txt", offset: 100 });
    assert.equal(past.isError, true);
  });
});
