/**
 * Core's audit log through its API with the test driver: what a call records (and a refused or
 * unauthenticated one), reading with paging and filters, runners' reports (only their repl owner's
 * events), the runner token's token id, and calls going on when the log cannot be written. The whole
 * path with real runners is audit.e2e.test.ts.
 */
import assert from "node:assert/strict";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createTokenVerifier } from "../../../lib/kit/tokens.js";
import { issueApiToken } from "../src/auth/secrets.js";
import type { StateStore } from "../src/state/store.js";
import { type Clients, startTestCore, type TestCore } from "./harness.js";

const failsWith = (code: Code) => (e: unknown) => ConnectError.from(e).code === code;

describe("audit log through core's API", () => {
  let t: TestCore;
  let token: { id: string; secret: string };
  let c: Clients;
  before(async () => {
    t = await startTestCore({ quota: 100 });
    const made = await issueApiToken(t.state, "ann", "script");
    token = { id: made.record.tokenId, secret: made.secret };
    c = t.clients({ bearer: token.secret });
  });
  after(() => t?.close());

  it("records a change with its token, address and repl; reads are not recorded", async () => {
    const { repl } = await c.repl.createRepl({ name: "one", template: "node" });
    await c.repl.getRepl({ replId: repl!.replId });
    await c.repl.listRepls({});
    const [e] = (await c.audit.listAuditEvents({ pageSize: 1 })).events;
    assert.equal(e.rpc, "devex.core.v1.ReplService/CreateRepl");
    assert.equal(e.userId, "ann");
    assert.equal(e.tokenId, token.id);
    assert.equal(e.clientAddress, "127.0.0.1");
    assert.equal(e.replId, repl!.replId);
    assert.equal(e.outcome, "ok");
    assert.deepEqual(e.details, { name: "one", template: "node" });
  });

  it("records refusals and failures, never unauthenticated calls", async () => {
    const reader = await issueApiToken(t.state, "ann", "reader", 60_000, Date.now(), ["repls:read"]);
    await assert.rejects(
      t.clients({ bearer: reader.secret }).repl.deleteRepl({ replId: "r000000000000" }),
      failsWith(Code.PermissionDenied),
    );
    await assert.rejects(c.repl.stopRepl({ replId: "rffffffffffff" }), failsWith(Code.NotFound));
    await assert.rejects(c.repl.createRepl({ name: "", template: "node" }), failsWith(Code.InvalidArgument));
    await assert.rejects(
      t.clients({}).repl.createRepl({ name: "x", template: "node" }),
      failsWith(Code.Unauthenticated),
    );
    const events = (await c.audit.listAuditEvents({ pageSize: 3 })).events;
    assert.deepEqual(
      events.map((e) => [e.rpc.split("/")[1], e.outcome, e.tokenId]),
      [
        ["CreateRepl", "invalid_argument", token.id],
        ["StopRepl", "not_found", token.id],
        ["DeleteRepl", "permission_denied", reader.record.tokenId],
      ],
    );
    assert.match(events[1].message, /rffffffffffff/);
  });

  it("pages newest first, filters by time and repl, refuses a forged page token", async () => {
    const before = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await c.repl.createRepl({ name: `p${i}`, template: "node" })).repl!.replId);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await c.audit.listAuditEvents({ pageSize: 2, pageToken, startTime: timestampFromMs(before) });
      assert.ok(page.events.length <= 2);
      seen.push(...page.events.map((e) => e.replId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    assert.deepEqual(seen, [...ids].reverse());
    const one = await c.audit.listAuditEvents({ replId: ids[2] });
    assert.deepEqual(
      one.events.map((e) => e.replId),
      [ids[2]],
    );
    const none = await c.audit.listAuditEvents({ endTime: timestampFromMs(before - 60_000) });
    assert.deepEqual(none.events, []);
    await assert.rejects(c.audit.listAuditEvents({ pageToken: "bm90IGFuIGlk" }), failsWith(Code.InvalidArgument));
    await assert.rejects(
      c.audit.listAuditEvents({ startTime: timestampFromMs(before), endTime: timestampFromMs(before - 1) }),
      failsWith(Code.InvalidArgument),
    );
  });

  it("runner tokens carry the API token's id; a runner reports only its repl owner's events", async () => {
    const { repl } = await c.repl.createRepl({ name: "run", template: "node" });
    const replId = repl!.replId;
    const { runner } = await c.repl.startRepl({ replId });
    const claims = createTokenVerifier(t.signer.publicKeyPem).verify(runner!.token, { aud: "runner", repl: replId });
    assert.equal(claims.tid, token.id);
    const started = t.driver.starts.at(-1)!;
    const control = t.clients({ bearer: started.controlToken }).control;
    const event = {
      time: timestampFromMs(Date.now()),
      userId: "ann",
      tokenId: token.id,
      clientAddress: "127.0.0.1",
      rpc: "devex.runner.v1.TerminalService/CreateTerminal",
      outcome: "ok",
      details: { terminal_id: "t1" },
    };
    const ids = { replId, runnerId: started.runnerId };
    assert.equal((await control.reportAudit({ ...ids, events: [event] })).recorded, 1);
    await assert.rejects(
      control.reportAudit({ ...ids, events: [event, { ...event, userId: "bob" }] }),
      failsWith(Code.PermissionDenied),
    );
    await assert.rejects(
      control.reportAudit({ ...ids, events: Array.from({ length: 201 }, () => event) }),
      failsWith(Code.InvalidArgument),
    );
    const [e] = (await c.audit.listAuditEvents({ pageSize: 1 })).events;
    assert.equal(e.rpc, event.rpc);
    assert.equal(e.replId, replId);
    assert.deepEqual(e.details, { terminal_id: "t1", source: "runner" });
    const bob = t.clients({ bearer: await t.token("bob") });
    assert.deepEqual((await bob.audit.listAuditEvents({})).events, []);
  });

  it("a runner reports only its own RPCs and credentials: it cannot plant core's calls", async () => {
    const { repl } = await c.repl.createRepl({ name: "plant", template: "node" });
    const replId = repl!.replId;
    await c.repl.startRepl({ replId });
    const started = t.driver.starts.at(-1)!;
    const control = t.clients({ bearer: started.controlToken }).control;
    const ids = { replId, runnerId: started.runnerId };
    const event = {
      time: timestampFromMs(Date.now()),
      userId: "ann",
      tokenId: token.id,
      clientAddress: "127.0.0.1",
      rpc: "devex.runner.v1.FileService/WriteFile",
      outcome: "ok",
      details: { path: "a.txt" } as Record<string, string>,
    };
    const refusedWith = (pattern: RegExp) => (e: unknown) =>
      ConnectError.from(e).code === Code.InvalidArgument && pattern.test(ConnectError.from(e).rawMessage);
    for (const rpc of [
      "devex.core.v1.AuthService/CreateApiToken",
      "auth/login",
      "devex.runner.v1.FileService/NoSuchMethod",
      "devex.runnercontrol.v1.RunnerAdminService/Drain",
    ])
      await assert.rejects(
        control.reportAudit({ ...ids, events: [event, { ...event, rpc }] }),
        refusedWith(/is not a runner RPC: report only methods of devex\.runner\.v1\.FileService/),
        rpc,
      );
    for (const tokenId of ["operator", "link", "github", "AbCdEfGhIjKlM"])
      await assert.rejects(
        control.reportAudit({ ...ids, events: [{ ...event, tokenId }] }),
        refusedWith(/token_id .* is neither an API token's id nor "session"/),
        tokenId,
      );
    const own = [
      event,
      { ...event, tokenId: "session", rpc: "devex.runner.v1.TerminalService/CreateTerminal", details: {} },
      { ...event, tokenId: "", rpc: "devex.runner.v1.ProcessService/Exec", details: { program: "sh" } },
    ];
    assert.equal((await control.reportAudit({ ...ids, events: own })).recorded, 3);
    const listed = (await c.audit.listAuditEvents({ replId, pageSize: 100 })).events;
    const fromRunner = listed.filter((e) => e.details.source === "runner");
    assert.deepEqual(
      fromRunner.map((e) => e.rpc).reverse(),
      own.map((e) => e.rpc),
      "only the accepted batch, every event marked source: runner",
    );
  });

  it("a call succeeds when its event cannot be written", async () => {
    const broken: StateStore = Object.create(t.state);
    broken.appendAuditEvents = async () => {
      throw new Error("disk full");
    };
    const t2 = await startTestCore({ state: broken, quota: 1000 });
    try {
      const c2 = t2.clients({ bearer: token.secret });
      const { repl } = await c2.repl.createRepl({ name: "still", template: "node" });
      assert.ok(repl?.replId);
    } finally {
      await t2.close();
    }
  });
});
