/**
 * The persist sidecar's service (persist-service.ts) over real HTTP: only core's token for this
 * repl asks for a persist; persists never overlap, and a request is answered by a persist that
 * began after it; the periodic persist keeps going after a failure. The persist itself is a stand-in
 * here (k8s-contract.e2e runs the real one against the blob store, and a pod killed after it).
 */
import assert from "node:assert/strict";
import { createTokenSigner, createTokenVerifier, generateSigningKey } from "../kit/tokens.js";
import { type PersistService, servePersist } from "./persist-service.js";

describe("persist sidecar service", () => {
  const signer = createTokenSigner(generateSigningKey().privateKeyPem);
  let service: PersistService;
  let running = 0;
  let overlapped = false;
  const started: number[] = [];
  let failing = false;
  const said: string[] = [];
  const hows: string[] = [];

  before(async () => {
    service = await servePersist({
      async persist(how) {
        hows.push(how);
        started.push(Date.now());
        running++;
        if (running > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 50));
        running--;
        if (failing) throw new Error("the blob store said no");
        // Which persist this was, and when it began: the answer names the one it came from.
        return { files: started.length, transferred: started.at(-1)!, deleted: 0 };
      },
      intervalMs: 200,
      host: "127.0.0.1",
      port: 0,
      verifier: createTokenVerifier(signer.publicKeyPem),
      replId: "r1",
      say: (line) => said.push(line),
    });
  });
  after(() => service?.close());

  const ask = (token?: string, query = "") =>
    fetch(`http://127.0.0.1:${service.port}/persist${query}`, {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  const core = (claims: { aud?: "runner-admin" | "runner"; repl?: string } = {}) =>
    signer.mint({ aud: claims.aud ?? "runner-admin", sub: "core", repl: claims.repl ?? "r1", scope: [] }, 60);

  it("refuses anyone but core, for this repl", async () => {
    const forged = createTokenSigner(generateSigningKey().privateKeyPem).mint(
      { aud: "runner-admin", sub: "core", repl: "r1", scope: [] },
      60,
    );
    for (const token of [undefined, "x", forged, core({ aud: "runner" }), core({ repl: "r2" })]) {
      assert.equal((await ask(token)).status, 401, String(token));
    }
    assert.equal((await fetch(`http://127.0.0.1:${service.port}/anything`)).status, 404);
  });

  it("answers with the counts of a persist that began after the request, one persist at a time", async () => {
    const asked = Date.now();
    const answers = await Promise.all([ask(core()), ask(core()), ask(core())]);
    const results = (await Promise.all(answers.map((a) => a.json()))) as { files: number; transferred: number }[];
    assert.equal(new Set(results.map((r) => r.files)).size, 3, "each request was answered by a persist of its own");
    for (const r of results) assert.ok(r.transferred >= asked, "one that began after the request");
    assert.equal(overlapped, false, "never two persists at once");
  });

  it("walks for core's request before a stop and periodically; may skip the walk for a running repl's checkpoint", async () => {
    hows.length = 0;
    assert.equal((await ask(core())).status, 200);
    assert.equal(hows.at(-1), "full");
    assert.equal((await ask(core(), "?how=watched")).status, 200);
    assert.equal(hows.at(-1), "watched");
    assert.equal((await ask(core(), "?how=sloppy")).status, 404);
    const asked = hows.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(new Set(hows.slice(asked)), new Set(["full"]), `periodic persists walk: ${hows.join(" ")}`);
  });

  it("a failed persist is a 500 with the reason, and the periodic one goes on", async () => {
    failing = true;
    const res = await ask(core());
    assert.equal(res.status, 500);
    assert.match(((await res.json()) as { error: string }).error, /the blob store said no/);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(
      said.some((l) => /^periodic persist failed: the blob store said no/.test(l)),
      said.join("\n"),
    );
    failing = false;
    const before = started.length;
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(started.length >= before + 2, `periodic persists after the failures: ${started.length - before}`);
    assert.equal((await ask(core())).status, 200);
  });
});
