/** Invalid UTF-8 in a binary request to core is InvalidArgument (raw bodies against the real embedded core). */
import assert from "node:assert/strict";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Embedded, startEmbedded } from "./embedded.js";

describe("invalid UTF-8 in a binary request (core)", function () {
  this.timeout(60_000);
  let e: Embedded;
  let token: string;
  before(async () => {
    e = await startEmbedded({ poolSize: 1 });
    token = (await issueApiToken(e.state, "alice", "test")).secret;
  });
  after(() => e?.close());

  it("GetRepl with 0xff 0xfe as repl_id: HTTP 400 invalid_argument naming the field, no reference id", async () => {
    const res = await fetch(`${e.core.url}/devex.core.v1.ReplService/GetRepl`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${token}` },
      body: Buffer.from([0x0a, 0x02, 0xff, 0xfe]), // GetReplRequest { repl_id = 0xff 0xfe }
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(
      body.message,
      /^request is not valid protobuf: invalid UTF-8 in the string field "repl_id" of GetReplRequest/,
    );
  });
});
