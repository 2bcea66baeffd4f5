/**
 * Who may open a preview under each rule (preview/access.ts), with real signed tokens: the owner's
 * preview token always; a link's only for its port, while that port is shared by link, from the
 * current link epoch on, and until it expires; anyone on a public port. Refusals say whether
 * signing in would help (only for a missing or an owner's token), so a link's visitor is never
 * sent to core's sign-in.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PreviewAccess } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, createTokenVerifier, generateSigningKey } from "../../../lib/kit/tokens.js";
import { createRunnerAuth } from "../src/auth.js";
import { checkPreviewAccess, PreviewRefused } from "../src/preview/access.js";
import { createPreviewProxy } from "../src/preview/proxy.js";
import { OWNER_ONLY, type PreviewRules } from "../src/preview/sharing.js";

const key = generateSigningKey();
const signer = createTokenSigner(key.privateKeyPem);
const auth = createRunnerAuth(createTokenVerifier(key.publicKeyPem), "r1");
// Minted when used: a token made when the file loads may have expired by the time its test runs.
const ownerToken = () => signer.mint({ aud: "runner", sub: "alice", repl: "r1", scope: ["preview"] }, 60);
const link = (port: number, epoch: number, ttl = 60, now?: number) =>
  signer.mint({ aud: "runner", sub: "alice", repl: "r1", scope: ["preview"], port, link: epoch }, ttl, now);
const rules = (access: PreviewAccess, ports: [number, PreviewAccess][] = [], linkEpoch = 0): PreviewRules => ({
  access,
  ports: new Map(ports),
  linkEpoch,
});

/** "ok", or the refusal's kind with whether signing in would help. */
function outcome(r: PreviewRules, port: number, token: string | undefined): string {
  try {
    checkPreviewAccess(auth, r, port, token);
    return "ok";
  } catch (e) {
    assert.ok(e instanceof PreviewRefused, String(e));
    return `${e.kind}${e.signInHelps ? "+sign-in" : ""}`;
  }
}

describe("preview access rules", () => {
  it("private (and no rules yet): the owner's token only; a browser without one may sign in", () => {
    for (const r of [OWNER_ONLY, rules(PreviewAccess.OWNER), rules(PreviewAccess.UNSPECIFIED)]) {
      assert.equal(outcome(r, 3000, ownerToken()), "ok");
      assert.equal(outcome(r, 3000, undefined), "unauthenticated+sign-in");
      assert.equal(outcome(r, 3000, link(3000, 0)), "permission-denied");
    }
  });

  it("link: a link for its own port from the current epoch, or the owner's token", () => {
    const r = rules(PreviewAccess.LINK, [], 2);
    assert.equal(outcome(r, 3000, ownerToken()), "ok");
    assert.equal(outcome(r, 3000, link(3000, 2)), "ok");
    assert.equal(outcome(r, 3000, link(3000, 1)), "permission-denied", "revoked by a later epoch");
    assert.equal(outcome(r, 3001, link(3000, 2)), "permission-denied", "another port");
    assert.equal(outcome(r, 3000, undefined), "unauthenticated+sign-in");
  });

  it("an expired link is refused without sending its visitor to sign in; an expired owner token may sign in", () => {
    const r = rules(PreviewAccess.LINK);
    const longAgo = Date.now() - 3_600_000;
    assert.equal(outcome(r, 3000, link(3000, 0, 60, longAgo)), "unauthenticated");
    const staleOwner = signer.mint({ aud: "runner", sub: "alice", repl: "r1", scope: ["preview"] }, 60, longAgo);
    assert.equal(outcome(r, 3000, staleOwner), "unauthenticated+sign-in");
    assert.equal(outcome(r, 3000, "not-a-token"), "unauthenticated+sign-in");
  });

  it("public: anyone, whatever token they bring", () => {
    const r = rules(PreviewAccess.PUBLIC);
    assert.equal(outcome(r, 3000, undefined), "ok");
    assert.equal(outcome(r, 3000, "garbage"), "ok");
  });

  it("a port's own rule overrides the default, both ways", () => {
    const r = rules(PreviewAccess.PUBLIC, [
      [5432, PreviewAccess.OWNER],
      [8080, PreviewAccess.LINK],
    ]);
    assert.equal(outcome(r, 3000, undefined), "ok");
    assert.equal(outcome(r, 5432, undefined), "unauthenticated+sign-in");
    assert.equal(outcome(r, 8080, link(8080, 0)), "ok");
    assert.equal(outcome(rules(PreviewAccess.OWNER, [[8080, PreviewAccess.PUBLIC]]), 8080, undefined), "ok");
  });

  it("a token for another repl or without the preview scope opens nothing", () => {
    const r = rules(PreviewAccess.LINK);
    const other = signer.mint({ aud: "runner", sub: "alice", repl: "r2", scope: ["preview"] }, 60);
    const filesOnly = signer.mint({ aud: "runner", sub: "alice", repl: "r1", scope: ["files"] }, 60);
    assert.equal(outcome(r, 3000, other), "permission-denied+sign-in");
    assert.equal(outcome(r, 3000, filesOnly), "permission-denied+sign-in");
  });
});

describe("preview proxy on a repl with its own preview origin", () => {
  it("refuses previews that arrive below a host every repl shares (an ingress's stripped /<replId>)", async () => {
    const proxy = createPreviewProxy({
      auth,
      activity: { touch() {} } as never,
      log: createLogger("runner", { level: "silent" }),
      ownPort: () => 1,
      replId: "r1",
      rules: () => ({ ...rules(PreviewAccess.PUBLIC), ownOrigin: true }),
    });
    const server = createServer((req, res) => {
      if (!proxy.http(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/preview/3000/`;
    try {
      const shared = await fetch(url, { headers: { "x-forwarded-prefix": "/r1" } });
      assert.equal(shared.status, 404);
      assert.match(await shared.text(), /its own origin/);
      // On its own host (no prefix stripped) a public preview is served: nothing listens, hence 502.
      assert.equal((await fetch(url)).status, 502);
    } finally {
      server.close();
    }
  });
});
