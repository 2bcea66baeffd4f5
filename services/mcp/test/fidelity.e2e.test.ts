/**
 * Agent file tools are exact: what read_file returns, written back with write_file, leaves the
 * file's bytes as they were, for text (with and without a final newline, CRLF, a byte-order mark)
 * and for binary files (NUL bytes, invalid UTF-8), which travel as base64. The SDK client talks
 * Streamable HTTP to the MCP server in front of the embedded setup (core, real runner processes);
 * the stored bytes are checked through the runner's own ReadFile RPC, not through MCP.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

type Structured = Record<string, unknown>;

const cases: { name: string; bytes: Uint8Array; encoding: "utf-8" | "base64" }[] = [
  { name: "text with a final newline", bytes: Buffer.from("line one\nline two\n"), encoding: "utf-8" },
  { name: "text without a final newline", bytes: Buffer.from("line one\nline two"), encoding: "utf-8" },
  { name: "CRLF text", bytes: Buffer.from("one\r\ntwo\r\n\r\nthree"), encoding: "utf-8" },
  { name: "a byte-order mark and non-ASCII text", bytes: Buffer.from("\ufeffhéllo 🌍\n"), encoding: "utf-8" },
  { name: "blank lines only", bytes: Buffer.from("\n\n"), encoding: "utf-8" },
  {
    name: "binary: NUL, invalid UTF-8, a truncated sequence",
    bytes: Uint8Array.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0x0a, 0xc3, 0x28, 0x0d, 0x0a, 0xe2, 0x82]),
    encoding: "base64",
  },
  { name: "invalid UTF-8 without NUL", bytes: Uint8Array.from([0x68, 0x69, 0xc0, 0xaf, 0x0a]), encoding: "base64" },
  { name: "an empty file", bytes: new Uint8Array(0), encoding: "utf-8" },
];

/** What an agent sends to write these bytes: text as itself, anything else as base64. */
function asArgument(c: (typeof cases)[number]): string {
  return c.encoding === "utf-8" ? Buffer.from(c.bytes).toString("utf8") : Buffer.from(c.bytes).toString("base64");
}

describe("MCP file tools are exact (embedded setup, Streamable HTTP)", function () {
  this.timeout(180_000);
  let env: EmbeddedMcp;
  let client: Client;
  let runner: RunnerClients;
  let replId: string;

  before(async () => {
    env = await startEmbeddedMcp(["alice"]);
    const token = env.tokens.alice;
    client = new Client({ name: "fidelity", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(env.endpoint), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    replId = ((await ok("create_repl", { name: "exact", template: "node" })).repl as Structured).repl_id as string;
    await ok("start_repl", { repl_id: replId });
    const core = await env.e.login("alice");
    runner = env.e.runner((await core.repls.startRepl({ replId })).runner!);
  });
  after(async () => {
    await client?.close();
    await env?.close();
  });

  async function call(name: string, args: Structured): Promise<CallToolResult> {
    return (await client.callTool({ name, arguments: { repl_id: replId, ...args } })) as CallToolResult;
  }
  async function ok(name: string, args: Structured): Promise<Structured> {
    const result = (await client.callTool({ name, arguments: replId ? { repl_id: replId, ...args } : args })) as
      | CallToolResult
      | undefined;
    const text = result!.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
    assert.ok(!result!.isError, `${name} failed: ${text}`);
    return result!.structuredContent as Structured;
  }
  function errorText(result: CallToolResult): string {
    assert.equal(result.isError, true, "expected a tool error");
    return result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
  }
  async function stored(path: string): Promise<Buffer> {
    return Buffer.from((await runner.files.readFile({ path })).content);
  }

  for (const c of cases) {
    it(`${c.name}: write → read → write back what was read leaves the same bytes`, async () => {
      const path = `exact/${c.name.replace(/[^a-z]+/g, "-")}`;
      const written = await ok("write_file", { path, content: asArgument(c), encoding: c.encoding });
      assert.deepEqual(await stored(path), Buffer.from(c.bytes), "write_file stores exactly the bytes");
      assert.equal(written.size, c.bytes.length, "size is a JSON number");

      const read = await ok("read_file", { path });
      assert.equal(read.encoding, c.encoding);
      assert.equal(read.content, asArgument(c), "read_file returns exactly what is stored");
      assert.equal(read.note, "");

      await ok("write_file", { path, content: read.content, encoding: read.encoding });
      assert.deepEqual(await stored(path), Buffer.from(c.bytes), "writing back what was read changes nothing");
    });
  }

  it("a file written by someone else reads exactly, and an edit-free write-back keeps it byte for byte", async () => {
    const bytes = Buffer.from("#!/bin/sh\r\necho hi\r\n\u0007bell");
    await runner.files.writeFile({ path: "exact/foreign.sh", content: bytes });
    const read = await ok("read_file", { path: "exact/foreign.sh" });
    assert.equal(read.content, bytes.toString("utf8"));
    await ok("write_file", { path: "exact/foreign.sh", content: read.content, encoding: read.encoding });
    assert.deepEqual(await stored("exact/foreign.sh"), bytes);
  });

  it("line ranges are exact slices of the file, each line with its own terminator", async () => {
    await runner.files.writeFile({ path: "exact/lines.txt", content: Buffer.from("a\r\nb\nc\r\nd") });
    assert.equal((await ok("read_file", { path: "exact/lines.txt", head: 2 })).content, "a\r\nb\n");
    assert.equal((await ok("read_file", { path: "exact/lines.txt", tail: 2 })).content, "c\r\nd");
    const range = await ok("read_file", { path: "exact/lines.txt", start_line: 2, end_line: 3 });
    assert.equal(range.content, "b\nc\r\n");
    assert.equal(range.total_lines, 4);
    await runner.files.writeFile({ path: "exact/empty", content: new Uint8Array(0) });
    assert.equal((await ok("read_file", { path: "exact/empty" })).total_lines, 0);
  });

  it("a binary file is refused a line range, reported as binary by read_multiple_files, and bad base64 is refused", async () => {
    await runner.files.writeFile({ path: "exact/blob.bin", content: Uint8Array.from([0, 1, 2, 255]) });
    assert.match(errorText(await call("read_file", { path: "exact/blob.bin", head: 1 })), /binary file \(4 bytes\)/);
    const many = await ok("read_multiple_files", { paths: ["exact/blob.bin", "exact/lines.txt"] });
    const [blob, lines] = many.files as Structured[];
    assert.match(blob.error as string, /binary file \(4 bytes\): use read_file/);
    assert.equal(lines.content, "a\r\nb\nc\r\nd");
    const bad = errorText(
      await call("write_file", { path: "exact/blob.bin", content: "not*base64", encoding: "base64" }),
    );
    assert.match(bad, /not valid base64/);
    assert.deepEqual(await stored("exact/blob.bin"), Buffer.from([0, 1, 2, 255]), "a refused write changes nothing");
  });

  it("a read cut at the size limit has no version and says it is not the whole file, and never splits a character", async () => {
    // 60,000 characters, an emoji (a surrogate pair) straddling the 50,000th.
    const text = `${"a".repeat(49_999)}😀${"b".repeat(9_999)}`;
    await runner.files.writeFile({ path: "exact/long.txt", content: Buffer.from(text) });
    const whole = await ok("read_file", { path: "exact/long.txt", start_line: 1, end_line: 1 });
    assert.equal(whole.version, "", "a cut read has no version, even for a line range");
    assert.match(whole.note as string, /not the whole file, so no version is given/);
    assert.equal(whole.content, "a".repeat(49_999), "the cut never splits a character");
    const full = await ok("read_file", { path: "exact/lines.txt" });
    assert.notEqual(full.version, "", "a whole read has its version");
  });

  it("sizes are JSON numbers in list_files and stat_file, as the output schema says", async () => {
    await runner.files.writeFile({
      path: "exact/sized/nine.txt",
      content: Buffer.from("123456789"),
      createParents: true,
    });
    const listed = await ok("list_files", { path: "exact/sized" });
    assert.deepEqual(
      (listed.entries as Structured[]).map((f) => [f.path, f.size]),
      [["exact/sized/nine.txt", 9]],
    );
    const stat = await ok("stat_file", { path: "exact/sized/nine.txt" });
    assert.equal((stat.entry as Structured).size, 9);
    const dir = await ok("stat_file", { path: "exact/sized" });
    assert.equal(typeof (dir.entry as Structured).size, "number");
  });
});
