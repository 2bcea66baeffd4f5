/**
 * Browser sign-in end to end: GitHub OAuth through grant against a fake GitHub (a local HTTP server
 * speaking the three endpoints core uses: authorize, access_token, /user), and the embedded one-time
 * login link. The fake stands in for github.com only; core, grant and the stores are real.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthMethod } from "../../../gen/devex/core/v1/auth_pb.js";
import { startTestCore, type TestCore } from "./harness.js";

const ACCESS_TOKEN = "gho_fakeGitHubAccessToken123";

interface FakeGitHub {
  url: string;
  server: Server;
  /** Codes handed out; the access-token endpoint accepts each once. */
  codes: Set<string>;
  tokenRequests: number;
}

async function startFakeGitHub(): Promise<FakeGitHub> {
  const fake: FakeGitHub = { url: "", server: createServer(), codes: new Set(), tokenRequests: 0 };
  fake.server.on("request", async (req, res) => {
    const url = new URL(req.url ?? "/", "http://github.test");
    if (req.method === "GET" && url.pathname === "/login/oauth/authorize") {
      assert.equal(url.searchParams.get("client_id"), "test-client");
      const code = `code${fake.codes.size}`;
      fake.codes.add(code);
      const back = new URL(url.searchParams.get("redirect_uri")!);
      back.searchParams.set("code", code);
      back.searchParams.set("state", url.searchParams.get("state") ?? "");
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (req.method === "POST" && url.pathname === "/login/oauth/access_token") {
      fake.tokenRequests++;
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const ok =
        form.get("client_id") === "test-client" &&
        form.get("client_secret") === "test-secret" &&
        fake.codes.delete(form.get("code") ?? "");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          ok ? { access_token: ACCESS_TOKEN, token_type: "bearer", scope: "" } : { error: "bad_verification_code" },
        ),
      );
      return;
    }
    if (req.method === "GET" && url.pathname === "/user") {
      if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ login: "OctoCat", name: "The Octocat", avatar_url: "https://avatars.test/octocat" }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => fake.server.listen(0, "127.0.0.1", r));
  const a = fake.server.address();
  fake.url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  return fake;
}

/** A tiny browser: follows redirects by hand and keeps cookies per origin path "/". */
class Browser {
  cookies = new Map<string, string>();
  setCookies: string[] = [];
  async get(url: string): Promise<Response> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { redirect: "manual", headers: cookie ? { cookie } : {} });
    for (const sc of res.headers.getSetCookie()) {
      this.setCookies.push(sc);
      const [pair, ...attrs] = sc.split(";");
      const [k, v] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
      if (v === "" || attrs.some((a) => /max-age=0/i.test(a.trim()))) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    return res;
  }
  /** Follows redirects until a non-redirect or a redirect to `stopAt`. */
  async follow(url: string, stopAt?: (u: string) => boolean): Promise<{ res: Response; url: string }> {
    for (let i = 0; i < 10; i++) {
      const res = await this.get(url);
      const location = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || !location) return { res, url };
      url = new URL(location, url).toString();
      if (stopAt?.(url)) return { res, url };
    }
    throw new Error("too many redirects");
  }
  get sessionCookie() {
    const v = this.cookies.get("devex_session");
    return v ? `devex_session=${v}` : undefined;
  }
}

describe("GitHub OAuth sign-in (fake GitHub)", () => {
  let github: FakeGitHub;
  let t: TestCore;
  before(async () => {
    github = await startFakeGitHub();
    t = await startTestCore({
      github: {
        clientId: "test-client",
        clientSecret: "test-secret",
        authorizeUrl: `${github.url}/login/oauth/authorize`,
        accessUrl: `${github.url}/login/oauth/access_token`,
        profileUrl: `${github.url}/user`,
      },
    });
  });
  after(async () => {
    await t?.close();
    github?.server.close();
  });

  it("signs in: /auth/login → GitHub → callback → session cookie; the access token is not kept", async () => {
    const browser = new Browser();
    const { res, url } = await browser.follow(`${t.core.url}/auth/login`, (u) => u === `${t.core.url}/`);
    assert.equal(res.status, 302);
    assert.equal(url, `${t.core.url}/`);
    const session = browser.setCookies.find((c) => c.startsWith("devex_session="));
    assert.ok(session, browser.setCookies.join("\n"));
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Lax/);
    assert.doesNotMatch(session, /Secure/, "http public URL: no Secure flag");
    assert.equal(github.tokenRequests, 1);

    const c = t.clients({ cookie: browser.sessionCookie });
    const me = await c.auth.getCurrentUser({});
    assert.equal(me.user?.userId, "octocat");
    assert.equal(me.user?.displayName, "The Octocat");
    assert.equal(me.user?.avatarUrl, "https://avatars.test/octocat");
    assert.equal(me.authMethod, AuthMethod.SESSION);
    assert.ok((await c.repl.createRepl({ name: "from browser", template: "python" })).repl);

    // Nothing the browser holds and nothing stored contains GitHub's access token.
    assert.ok(!browser.setCookies.some((c) => c.includes(ACCESS_TOKEN)));
    const snapshot = await readFile(join(t.dir, "state", "state.json"), "utf8");
    assert.ok(snapshot.includes("octocat"));
    assert.ok(!snapshot.includes(ACCESS_TOKEN));
    // The sign-in is in the audit log, without GitHub's token.
    const { events } = await c.audit.listAuditEvents({});
    assert.deepEqual(events.map((e) => `${e.rpc} ${e.tokenId}`).reverse(), [
      "auth/login github",
      "devex.core.v1.ReplService/CreateRepl session",
    ]);
    assert.ok(!JSON.stringify(events.map((e) => e.details)).includes(ACCESS_TOKEN));
  });

  it("refuses a callback whose state does not match", async () => {
    const browser = new Browser();
    const start = await browser.get(`${t.core.url}/auth/connect/github`);
    assert.equal(start.status, 302);
    const authorize = new URL(start.headers.get("location")!);
    assert.ok(authorize.searchParams.get("state"), "grant sends a state");
    const flow = browser.setCookies.find((c) => c.startsWith("devex_oauth="));
    assert.match(flow ?? "", /Max-Age=600;.*HttpOnly/i, "the flow cookie lives 10 minutes, HttpOnly");
    const res = await browser.get(`${t.core.url}/auth/connect/github/callback?code=code-forged&state=forged`);
    assert.equal(res.status, 401);
    assert.equal(browser.sessionCookie, undefined);
  });

  it("Logout ends the session", async () => {
    const browser = new Browser();
    await browser.follow(`${t.core.url}/auth/login`, (u) => u === `${t.core.url}/`);
    const c = t.clients({ cookie: browser.sessionCookie });
    await c.auth.getCurrentUser({});
    await c.auth.logout({});
    await assert.rejects(c.auth.getCurrentUser({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);
  });
});

describe("embedded setup: one-time login link", () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore({ localUser: "dev" });
  });
  after(() => t?.close());

  it("signs in once with the printed link, then refuses it", async () => {
    assert.match(t.core.loginLink ?? "", /^http:\/\/127\.0\.0\.1:\d+\/auth\/login\?code=[A-Za-z0-9_-]{32}$/);
    const browser = new Browser();
    const first = await browser.get(t.core.loginLink!);
    assert.equal(first.status, 302);
    assert.ok(browser.sessionCookie);
    const me = await t.clients({ cookie: browser.sessionCookie }).auth.getCurrentUser({});
    assert.equal(me.user?.userId, "dev");

    const again = await new Browser().get(t.core.loginLink!);
    assert.equal(again.status, 403);
    const wrong = await new Browser().get(`${t.core.url}/auth/login?code=guess`);
    assert.equal(wrong.status, 403);
    // Without a session or token nothing works.
    await assert.rejects(t.clients().repl.listRepls({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);
  });
});
