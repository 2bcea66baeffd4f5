/** The audit table prints what users and runners sent without letting it drive the terminal. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema } from "../../gen/devex/core/v1/audit_pb.js";
import { auditTable, printable } from "./audit-listing.js";

const ESC = "\u001b";

describe("audit table", () => {
  it("escapes control characters, as JSON writes them, in every field", () => {
    const hostile = `${ESC}]0;pwned\u0007${ESC}[2J\r\n\u009b31m\u202eexe.txt`;
    const event = create(AuditEventSchema, {
      eventId: "1-0",
      time: timestampFromMs(Date.UTC(2026, 4, 1)),
      userId: `ann${hostile}`,
      tokenId: `tok${hostile}`,
      clientAddress: `1.2.3.4${hostile}`,
      rpc: `devex.runner.v1.FileService/WriteFile${hostile}`,
      replId: `r1${hostile}`,
      outcome: `ok${hostile}`,
      message: `denied${hostile}`,
      details: { path: `a${hostile}`, [`k${hostile}`]: "v", source: "runner" },
    });
    for (const withUser of [true, false]) {
      const table = auditTable([event], withUser);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
      assert.doesNotMatch(table, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/, "no control character");
      assert.equal(table.split("\n").length, 3, "the header, one row, the final newline");
      assert.match(table, /path=a\\u001b\]0;pwned\\u0007\\u001b\[2J\\u000d\\u000a\\u009b31m\\u202eexe\.txt/);
      assert.match(table, /FileService\/WriteFile\\u001b/);
      assert.match(table, /"denied\\u001b/, "the message, quoted");
    }
    assert.match(auditTable([event], true), /ann\\u001b/);
  });

  it("leaves ordinary text alone", () => {
    assert.equal(printable("src/ü 日本/a b=c.txt"), "src/ü 日本/a b=c.txt");
    assert.equal(printable("\t\u2028"), "\\u0009\\u2028");
  });
});
