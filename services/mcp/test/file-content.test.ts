import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ListFilesResponseSchema, StatFileResponseSchema } from "../../../gen/devex/mcp/v1/agent_tools_pb.js";
import { escapeControls } from "../src/error-text.js";
import { asText, contentBytes, linesOf, toBase64 } from "../src/tools/file-content.js";
import { toolJson } from "../src/tools/tool-json.js";

describe("MCP file content, exactly", () => {
  it("treats valid UTF-8 without NUL as text, keeping a byte-order mark; anything else as binary", () => {
    assert.equal(asText(Buffer.from("\ufeffa\r\nb\n")), "\ufeffa\r\nb\n");
    assert.equal(asText(new Uint8Array(0)), "");
    assert.equal(asText(Uint8Array.from([0x61, 0x00, 0x62])), undefined, "NUL");
    assert.equal(asText(Uint8Array.from([0x61, 0xff])), undefined, "invalid byte");
    assert.equal(asText(Uint8Array.from([0x61, 0xe2, 0x82])), undefined, "truncated sequence");
    assert.equal(asText(Uint8Array.from([0xc0, 0xaf])), undefined, "overlong encoding");
  });

  it("turns content back into the same bytes, and refuses malformed base64", () => {
    const bytes = Uint8Array.from([0, 255, 254, 13, 10, 128]);
    assert.deepEqual(Buffer.from(contentBytes(toBase64(bytes), "base64")), Buffer.from(bytes));
    assert.deepEqual(Buffer.from(contentBytes("AP/+\nDQqA", "base64")), Buffer.from(bytes), "line breaks are allowed");
    assert.deepEqual(Buffer.from(contentBytes("é\r\n", "utf-8")), Buffer.from("é\r\n"));
    assert.equal(contentBytes("", "base64").length, 0);
    for (const bad of ["abc", "ab=c", "a*bc", "abc==="]) {
      assert.throws(() => contentBytes(bad, "base64"), /not valid base64/, bad);
    }
  });

  it("splits lines with their own terminators, so that joining them gives the text back", () => {
    assert.deepEqual(linesOf("a\r\nb\nc"), ["a\r\n", "b\n", "c"]);
    assert.deepEqual(linesOf("a\n"), ["a\n"]);
    assert.deepEqual(linesOf("\n\n"), ["\n", "\n"]);
    assert.deepEqual(linesOf(""), []);
    for (const text of ["x\r\n\r\ny", "\ufeff\n", "no newline"]) assert.equal(linesOf(text).join(""), text);
  });

  it("writes 64-bit sizes as JSON numbers, in nested and repeated messages too", () => {
    const listed = toolJson(
      ListFilesResponseSchema,
      create(ListFilesResponseSchema, {
        entries: [
          { path: "a", size: 44n },
          { path: "b", size: 2n ** 40n },
        ],
      }),
    );
    assert.deepEqual(
      (listed.entries as { size: unknown }[]).map((e) => e.size),
      [44, 2 ** 40],
    );
    const stat = toolJson(StatFileResponseSchema, create(StatFileResponseSchema, { entry: { size: 0n } }));
    assert.equal((stat.entry as { size: unknown }).size, 0, "a zero size is emitted, as a number");
    assert.equal(JSON.stringify(stat).includes('"size":0'), true);
  });

  it("escapes control characters in error text but keeps newlines and tabs", () => {
    assert.equal(escapeControls("a\u0000b\u001b[0m\u007f\u0085\tc\nd"), "a\\u0000b\\u001b[0m\\u007f\\u0085\tc\nd");
  });
});
