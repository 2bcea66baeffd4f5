/**
 * The device login's HTTP endpoints (RFC 8628, auth/device-login.ts) against a real core: the
 * answers a device gets while it waits, once approved (a working token, given once), once denied,
 * and for every malformed request; the limit on codes per address. The browser side (the /device
 * page, a PTY-run CLI) is web/test/device-login.e2e.test.ts.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { clientOf, normalizeUserCode } from "../src/auth/device-login.js";
import { startTestCore, type TestCore } from "./harness.js";

const GRANT = "urn:ietf:params:oauth:grant-type:device_code";

describe("device login endpoints (RFC 8628)", () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore();
  });
  after(() => t?.close());

  const post = async (
    what: "code" | "token",
    fields: Record<string, string>,
    type = "application/x-www-form-urlencoded",
  ) => {
    const res = await fetch(`${t.core.url}/auth/device/${what}`, {
      method: "POST",
      headers: { "content-type": type },
      body: type.includes("json") ? JSON.stringify(fields) : new URLSearchParams(fields),
    });
    assert.equal(res.headers.get("cache-control"), "no-store");
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  let codesAsked = 0;
  const start = async () => {
    codesAsked++;
    const r = await post("code", { client_id: "devex-cli", client_name: "devex CLI on test\u0007box" });
    assert.equal(r.status, 200);
    return r.body as unknown as { device_code: string; user_code: string; verification_uri: string; interval: number };
  };
  const poll = (device_code: string) => post("token", { client_id: "devex-cli", grant_type: GRANT, device_code });

  it("hands out a code, says pending until approved, then gives one working token", async () => {
    const s = await start();
    assert.match(s.user_code, /^[B-Z]{4}-[B-Z]{4}$/);
    assert.equal(s.verification_uri, `${t.core.url}/device`);
    assert.equal(s.interval, 2);
    assert.deepEqual((await poll(s.device_code)).body.error, "authorization_pending");
    const code = normalizeUserCode(s.user_code)!;
    assert.equal(
      (await t.state.getDeviceGrant(code))?.clientName,
      "devex CLI on testbox",
      "control characters dropped",
    );
    assert.ok(await t.state.decideDeviceGrant(code, { status: "approved", userId: "carol" }));
    const [a, b] = await Promise.all([poll(s.device_code), poll(s.device_code)]);
    const won = [a, b].filter((r) => r.status === 200);
    assert.equal(won.length, 1, "one token for one approval");
    assert.equal([a, b].find((r) => r.status !== 200)?.body.error, "expired_token");
    assert.equal(won[0].body.token_type, "Bearer");
    const me = await t.clients({ bearer: won[0].body.access_token }).auth.getCurrentUser({});
    assert.equal(me.user?.userId, "carol");
    assert.equal((await poll(s.device_code)).body.error, "expired_token");
  });

  it("a device may ask for scopes: the approval page sees them and the token has them", async () => {
    codesAsked++;
    const r = await post("code", { client_id: "devex-cli", scope: "repls:read files:read repls:read" });
    assert.equal(r.status, 200);
    const code = normalizeUserCode(r.body.user_code)!;
    assert.deepEqual((await t.state.getDeviceGrant(code))?.scopes, ["repls:read", "files:read"]);
    assert.ok(await t.state.decideDeviceGrant(code, { status: "approved", userId: "erin" }));
    const token = (await poll(r.body.device_code)).body.access_token;
    assert.deepEqual((await t.clients({ bearer: token }).auth.getCurrentUser({})).scopes, ["repls:read", "files:read"]);
    codesAsked++;
    const bad = await post("code", { client_id: "devex-cli", scope: "repls:read everything" });
    assert.deepEqual(bad, {
      status: 400,
      body: { error: "invalid_scope", error_description: "no such scope: everything" },
    });
  });

  it("a denied login answers access_denied, once", async () => {
    const s = await start();
    assert.ok(await t.state.decideDeviceGrant(normalizeUserCode(s.user_code)!, { status: "denied" }));
    assert.deepEqual(await poll(s.device_code), {
      status: 400,
      body: { error: "access_denied", error_description: "the user denied this login" },
    });
    assert.equal((await poll(s.device_code)).body.error, "expired_token");
  });

  it("refuses what is not this login's, and malformed requests, with the RFC's errors", async () => {
    const s = await start();
    const [userCode] = s.device_code.split(".");
    assert.equal((await poll(`${userCode}.guessed`)).body.error, "expired_token", "as if it did not exist");
    assert.equal((await poll("nonsense")).body.error, "expired_token");
    assert.equal(
      (await post("token", { client_id: "devex-cli", grant_type: "password" })).body.error,
      "unsupported_grant_type",
    );
    const wrongClient = await post("code", { client_id: "someone-else" });
    assert.deepEqual([wrongClient.status, wrongClient.body.error], [401, "invalid_client"]);
    const json = await post("code", { client_id: "devex-cli" }, "application/json");
    assert.deepEqual([json.status, json.body.error], [400, "invalid_request"]);
    const get = await fetch(`${t.core.url}/auth/device/code`);
    assert.equal(get.status, 405);
    // Still pending after all that.
    assert.equal((await poll(s.device_code)).body.error, "authorization_pending");
    // Nor can an API token approve it (a browser session must).
    const bob = t.clients({ bearer: await t.token("bob") });
    await assert.rejects(
      bob.auth.approveDeviceLogin({ userCode: s.user_code, approve: true }),
      (e) => ConnectError.from(e).code === Code.PermissionDenied,
    );
    assert.equal((await poll(s.device_code)).body.error, "authorization_pending");
  });

  it("limits the codes one address may ask for in a minute", async () => {
    // 30 a minute are allowed; the tests above asked for some of them.
    const answers = [];
    for (let i = codesAsked; i < 34; i++) answers.push((await post("code", { client_id: "devex-cli" })).status);
    assert.deepEqual(answers, [...Array(30 - codesAsked).fill(200), ...Array(4).fill(429)]);
  });

  it("behind a trusted proxy (DEVEX_TRUST_PROXY), counts the client X-Forwarded-For names, and only then", async () => {
    const ask = (core: TestCore, forwardedFor: string) =>
      fetch(`${core.core.url}/auth/device/code`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": forwardedFor },
        body: new URLSearchParams({ client_id: "devex-cli" }),
      }).then((r) => r.status);
    for (const trustProxy of [true, false]) {
      const c = await startTestCore({ trustProxy });
      try {
        const first = [];
        for (let i = 0; i < 31; i++) first.push(await ask(c, "198.51.100.1"));
        assert.deepEqual(first, [...Array(30).fill(200), 429]);
        // Another client behind the same proxy has its own allowance only when the proxy is trusted.
        assert.equal(await ask(c, "198.51.100.2"), trustProxy ? 200 : 429, `trustProxy=${trustProxy}`);
      } finally {
        await c.close();
      }
    }
  });

  it("counts an IPv6 client by its /64 and a mapped IPv4 client by its address", () => {
    assert.equal(clientOf("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert.equal(clientOf("2001:db8:1:2::7"), "2001:db8:1:2::/64");
    assert.equal(clientOf("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(clientOf("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(clientOf("192.0.2.7"), "192.0.2.7");
  });
});
