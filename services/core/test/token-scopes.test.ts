/**
 * Tokens made with tokens (AuthService.CreateApiToken under an API token): never stronger and never
 * longer-lived than their maker; unknown scopes are InvalidArgument; what GetCurrentUser reports.
 * The per-RPC checks are the authorization matrix (auth-matrix.test.ts).
 */
import assert from "node:assert/strict";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ALL_API_SCOPES } from "../../../lib/contracts/api-scopes.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { startTestCore, type TestCore } from "./harness.js";

const failsWith = (code: Code, message: RegExp) => (e: unknown) => {
  const err = ConnectError.from(e);
  return err.code === code && message.test(err.rawMessage);
};

describe("API token scopes: tokens made with tokens", () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore();
  });
  after(() => t?.close());

  it("a scoped token makes tokens with at most its scopes, expiring no later than itself", async () => {
    const hour = 3_600_000;
    const maker = await issueApiToken(t.state, "dana", "maker", hour, Date.now(), ["admin", "repls:read"]);
    const c = t.clients({ bearer: maker.secret });
    assert.deepEqual((await c.auth.getCurrentUser({})).scopes, ["admin", "repls:read"]);

    const same = await c.auth.createApiToken({ name: "same", ttl: { seconds: 365n * 86_400n, nanos: 0 } });
    assert.deepEqual(same.token?.scopes, ["admin", "repls:read"], "none asked: the maker's own");
    const expires = timestampMs(same.token!.expireTime!);
    assert.ok(expires <= maker.record.expireTime, `expires ${new Date(expires)}, not after its maker`);
    const narrower = await c.auth.createApiToken({ name: "narrower", scopes: ["repls:read"] });
    assert.deepEqual(narrower.token?.scopes, ["repls:read"]);
    await assert.rejects(
      c.auth.createApiToken({ name: "wider", scopes: ["repls:read", "exec"] }),
      failsWith(Code.PermissionDenied, /may not give a new token the scope exec/),
    );
    // The narrower one may not make tokens at all (that takes admin).
    await assert.rejects(
      t.clients({ bearer: narrower.secret }).auth.createApiToken({ name: "x" }),
      failsWith(Code.PermissionDenied, /needs the scope admin \(it has repls:read\)/),
    );
  });

  it("refuses a scope that does not exist, naming the field", async () => {
    const c = t.clients({ bearer: await t.token("dana") });
    await assert.rejects(
      c.auth.createApiToken({ name: "odd", scopes: ["files:delete"] }),
      failsWith(Code.InvalidArgument, /scopes/),
    );
  });

  it("a token without scopes may do everything, and says so", async () => {
    const c = t.clients({ bearer: await t.token("dana") });
    const me = await c.auth.getCurrentUser({});
    assert.deepEqual(me.scopes, ["repls:read", "repls:write", "files:read", "files:write", "exec", "admin"]);
    const made = await c.auth.createApiToken({ name: "full" });
    assert.deepEqual(made.token?.scopes, [], "stored without scopes: everything, later scopes too");
    // However it is asked for (the operator's CLI lists them all): the same, stored the same way.
    const six = await issueApiToken(t.state, "dana", "six", 60_000, Date.now(), [...ALL_API_SCOPES, "exec"]);
    assert.equal(six.record.scopes, undefined);
  });
});
