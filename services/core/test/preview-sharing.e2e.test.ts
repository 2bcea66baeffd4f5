/**
 * Preview sharing through the real embedded core and a real runner: private previews refuse
 * anonymous requests (a browser is sent to sign in, and only the owner's session gets in), link
 * previews open with an unexpired link of their own port and nothing else (FileService and core
 * refuse the link's token), links stop at their expiry and when the port is made private, public
 * previews need nothing, and per-port settings override the repl's default.
 */
import assert from "node:assert/strict";
import { PreviewVisibility, type RunnerAccess } from "../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients, RunnerClients } from "../../../lib/client/clients.js";
import { coreClientsFor } from "../../../lib/client/node.js";
import { previewFetch } from "../../../lib/testing/preview-fetch.js";
import { codeOf } from "../../runner/test/helpers.js";
import { openSession } from "../src/auth/sessions.js";
import { type Embedded, startEmbedded } from "./embedded.js";

const NAVIGATE = { accept: "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" };

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: last saw ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("preview sharing: private, link and public previews", function () {
  this.timeout(90_000);
  let e: Embedded;
  let core: CoreClients;
  let access: RunnerAccess;
  let runner: RunnerClients;
  let replId: string;
  const ports = [0, 0].map(() => 20_000 + Math.floor(Math.random() * 20_000));
  const page = (port: number, path = "") => access.previewUrlTemplate.replace("{port}", String(port)) + path;
  /** A GET as a browser sends it (previewFetch: headers as given, redirects not followed). */
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const res = await previewFetch(url, { headers });
    const cookie = res.headers.getSetCookie()[0]?.split(";")[0] ?? "";
    return { status: res.status, location: res.headers.get("location") ?? "", body: await res.text(), cookie };
  };
  const share = (port: number, visibility: PreviewVisibility) =>
    core.repls.setPreviewVisibility({ replId, port, visibility });

  before(async () => {
    e = await startEmbedded({ poolSize: 1 });
    core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "share", template: "node" });
    replId = repl!.replId;
    access = (await core.repls.startRepl({ replId })).runner!;
    runner = e.runner(access);
    for (const port of ports) {
      const server = `require("http").createServer((q, r) => r.end("app ${port} " + q.url)).listen(${port})`;
      await runner.processes.startProcess({ command: { argv: ["node", "-e", server] } });
    }
    await eventually(
      () => get(page(ports[0]), { authorization: `Bearer ${access.previewToken}` }),
      (r) => r.status === 200,
      "the repl's server answers",
    );
  });
  after(() => e?.close());

  it("is private by default: anonymous refused, a browser sent to sign in, the owner's token let in", async () => {
    const { repl } = await core.repls.getRepl({ replId });
    assert.equal(repl!.previewSharing?.visibility, PreviewVisibility.PRIVATE);
    // An origin of the repl's own: another repl's page cannot read it, nor use its cookies.
    assert.equal(new URL(page(ports[0])).host, `${replId}.localhost:${new URL(e.core.previewUrl!).port}`);
    const anonymous = await get(page(ports[0], "docs?x=1"));
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.body, /private/);
    const browser = await get(page(ports[0], "docs?x=1"), NAVIGATE);
    assert.equal(browser.status, 302);
    const signIn = new URL(browser.location);
    assert.equal(`${signIn.origin}${signIn.pathname}`, `${e.core.publicUrl}/auth/preview`);
    assert.deepEqual(Object.fromEntries(signIn.searchParams), {
      repl: replId,
      port: String(ports[0]),
      path: "/docs?x=1",
    });
    const owner = await get(page(ports[0]), { authorization: `Bearer ${access.previewToken}` });
    assert.equal(owner.body, `app ${ports[0]} /`);
  });

  it("signs the owner's browser in through core, and no one else's", async () => {
    const signIn = `${e.core.publicUrl}/auth/preview?repl=${replId}&port=${ports[0]}&path=${encodeURIComponent("/docs?x=1")}`;
    // Not signed in: the web client's /preview page signs in and comes back.
    const anonymous = await get(signIn);
    assert.equal(anonymous.status, 302);
    assert.equal(anonymous.location, `/preview?repl=${replId}&port=${ports[0]}&path=%2Fdocs%3Fx%3D1`);
    const cookieOf = async (user: string) => (await openSession(e.state, user, false)).split(";")[0];
    const mallory = await get(signIn, { cookie: await cookieOf("mallory") });
    assert.equal(mallory.status, 404);
    const alice = await get(signIn, { cookie: await cookieOf("alice") });
    assert.equal(alice.status, 302);
    const back = new URL(alice.location);
    assert.equal(back.pathname, new URL(page(ports[0], "docs")).pathname);
    assert.equal(back.searchParams.get("x"), "1");
    // The runner keeps the token in a cookie for the port and takes it out of the address bar.
    const landed = await get(alice.location, NAVIGATE);
    assert.equal(landed.status, 302);
    assert.equal(landed.location, "./docs?x=1");
    const { cookie } = landed;
    assert.match(cookie, /^devex_preview=/);
    const opened = await get(new URL(landed.location, alice.location).toString(), { ...NAVIGATE, cookie });
    assert.equal(opened.body, `app ${ports[0]} /docs?x=1`);
    // Bad input is named, and never an open redirect: the page is always below this port's preview.
    const alicesCookie = await cookieOf("alice");
    const signInTo = (path: string) =>
      `${e.core.publicUrl}/auth/preview?repl=${replId}&port=${ports[0]}&path=${encodeURIComponent(path)}`;
    const doubled = await get(signInTo("//evil.example/"), { cookie: alicesCookie });
    assert.equal(doubled.status, 302);
    assert.equal(new URL(doubled.location).origin, new URL(page(ports[0])).origin);
    assert.ok(new URL(doubled.location).pathname.startsWith(`/preview/${ports[0]}/`));
    // Dot segments would resolve into another port's (or, on a shared host, another repl's) preview.
    for (const path of [
      `/../${ports[1]}/`,
      "/../../../r000000000000/preview/80/",
      "/%2e%2e/%2E%2e/x",
      "/a\\..\\..\\b",
    ]) {
      const traversal = await get(signInTo(path), { cookie: alicesCookie });
      assert.equal(traversal.status, 400, path);
      assert.equal(traversal.location, "");
    }
    assert.equal((await get(`${e.core.publicUrl}/auth/preview?repl=${replId}&port=0`)).status, 400);
  });

  it("makes links only for a port shared by link, and a link opens that preview and nothing else", async () => {
    assert.equal(await codeOf(core.repls.createPreviewLink({ replId, port: ports[0] })), "FailedPrecondition");
    const { repl } = await share(ports[0], PreviewVisibility.LINK);
    assert.equal(repl!.previewSharing?.ports[ports[0]], PreviewVisibility.LINK);
    assert.equal(
      await codeOf(core.repls.createPreviewLink({ replId, port: ports[0], path: `/../${ports[1]}/` })),
      "InvalidArgument",
    );
    const link = await core.repls.createPreviewLink({ replId, port: ports[0], path: "/hello" });
    assert.ok(link.expireTime);
    const opened = await eventually(
      () => get(link.url),
      (r) => r.status === 200,
      "the link opens once the runner has the rule",
    );
    assert.equal(opened.body, `app ${ports[0]} /hello`);
    const token = new URL(link.url).searchParams.get("token")!;
    // The link's token is a preview credential: the runner's RPCs and core refuse it.
    const asRunner = e.runner({ url: access.url, token });
    assert.equal(await codeOf(asRunner.files.readFile({ path: "package.json" })), "PermissionDenied");
    assert.equal(await codeOf(asRunner.processes.startProcess({ command: { argv: ["true"] } })), "PermissionDenied");
    assert.equal(await codeOf(coreClientsFor(e.core.url, { token }).repls.listRepls({})), "Unauthenticated");
    // ... and it opens no other port, even one that is shared by link too.
    await share(ports[1], PreviewVisibility.LINK);
    const other = await get(`${page(ports[1])}?token=${encodeURIComponent(token)}`);
    assert.equal(other.status, 403);
    assert.match(other.body, /another port/);
  });

  it("stops working at its expiry, without sending the visitor to sign in", async () => {
    const link = await core.repls.createPreviewLink({ replId, port: ports[0], ttl: { seconds: 2n, nanos: 0 } });
    const token = new URL(link.url).searchParams.get("token")!;
    const exp = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp * 1000;
    assert.equal(Number(link.expireTime!.seconds) * 1000, exp, "expire_time is the token's own expiry");
    assert.equal((await get(link.url)).status, 200);
    await new Promise((r) => setTimeout(r, exp - Date.now() + 100));
    const expired = await get(link.url, NAVIGATE);
    assert.equal(expired.status, 401);
    assert.match(expired.body, /expired or was revoked/);
  });

  it("is revoked, with every earlier link, when the port is made private", async () => {
    const before = await core.repls.createPreviewLink({ replId, port: ports[0] });
    assert.equal((await get(before.url)).status, 200);
    await share(ports[0], PreviewVisibility.PRIVATE);
    await eventually(
      () => get(before.url),
      (r) => r.status === 403,
      "the private port refuses its link",
    );
    await share(ports[0], PreviewVisibility.LINK);
    const after = await core.repls.createPreviewLink({ replId, port: ports[0] });
    await eventually(
      () => get(after.url),
      (r) => r.status === 200,
      "a new link opens it",
    );
    const old = await get(before.url);
    assert.equal(old.status, 403);
    assert.match(old.body, /expired or was revoked/);
  });

  it("public needs nothing; a port's own setting overrides the default", async () => {
    await share(0, PreviewVisibility.PUBLIC);
    await share(ports[1], PreviewVisibility.PRIVATE);
    await share(ports[0], PreviewVisibility.UNSPECIFIED); // follows the default again
    const { repl } = await core.repls.getRepl({ replId });
    assert.equal(repl!.previewSharing?.visibility, PreviewVisibility.PUBLIC);
    assert.deepEqual({ ...repl!.previewSharing?.ports }, { [ports[1]]: PreviewVisibility.PRIVATE });
    const open = await eventually(
      () => get(page(ports[0], "x")),
      (r) => r.status === 200,
      "the public port opens",
    );
    assert.equal(open.body, `app ${ports[0]} /x`);
    assert.equal((await get(page(ports[1]))).status, 401);
    await share(0, PreviewVisibility.UNSPECIFIED);
    await eventually(
      () => get(page(ports[0])),
      (r) => r.status === 401,
      "the default is private again",
    );
  });

  it("belongs to the owner: another user's calls are NotFound; bad ports and lifetimes are InvalidArgument", async () => {
    const bob = await e.login("bob");
    assert.equal(
      await codeOf(bob.repls.setPreviewVisibility({ replId, port: 0, visibility: PreviewVisibility.PUBLIC })),
      "NotFound",
    );
    assert.equal(await codeOf(bob.repls.createPreviewLink({ replId, port: ports[0] })), "NotFound");
    assert.equal(
      await codeOf(core.repls.setPreviewVisibility({ replId, port: 70_000, visibility: PreviewVisibility.PUBLIC })),
      "InvalidArgument",
    );
    assert.equal(
      await codeOf(core.repls.createPreviewLink({ replId, port: ports[0], ttl: { seconds: 40n * 86_400n, nanos: 0 } })),
      "InvalidArgument",
    );
  });
});
