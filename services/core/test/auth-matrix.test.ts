/**
 * Every core RPC × {anonymous, other user, owner, revoked token, expired token}. Another user's repl
 * is NotFound (never PermissionDenied); user credentials never work on RunnerControlService.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../../gen/devex/core/v1/auth_pb.js";
import { EgressMode, ReplService } from "../../../gen/devex/core/v1/repl_pb.js";
import { RunnerControlService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { bearerAuth, createCoreAdminClient } from "../../../lib/client/clients.js";
import { issueApiToken, sha256 } from "../src/auth/secrets.js";
import { type Clients, startTestCore, type TestCore } from "./harness.js";

type Who = "anonymous" | "other user" | "owner" | "revoked token" | "expired token";
const everyone: Who[] = ["anonymous", "other user", "owner", "revoked token", "expired token"];

interface Ctx {
  c: Clients;
  /** A fresh repl of the owner, for calls that change or remove it. */
  fresh(): Promise<string>;
  replId: string;
  ownerTokenId: string;
  /** The user code of a fresh, pending device login. */
  deviceCode(): Promise<string>;
}

type Expect = "ok" | Code;

interface Rpc {
  name: string;
  call(ctx: Ctx): Promise<unknown>;
  /** Outcome for the other (valid) user. */
  other: Expect;
  /** Outcome for the owner. */
  owner: Expect;
}

const U = Code.Unauthenticated;

const rpcs: Rpc[] = [
  { name: "AuthService.GetCurrentUser", call: ({ c }) => c.auth.getCurrentUser({}), other: "ok", owner: "ok" },
  {
    name: "AuthService.CreateApiToken",
    call: ({ c }) => c.auth.createApiToken({ name: "matrix" }),
    other: "ok",
    owner: "ok",
  },
  { name: "AuthService.ListApiTokens", call: ({ c }) => c.auth.listApiTokens({}), other: "ok", owner: "ok" },
  {
    name: "AuthService.RevokeApiToken (owner's token id)",
    call: async ({ c, ownerTokenId }) => c.auth.revokeApiToken({ tokenId: ownerTokenId }),
    other: Code.NotFound,
    owner: "ok",
  },
  { name: "AuthService.Logout", call: ({ c }) => c.auth.logout({}), other: "ok", owner: "ok" },
  {
    name: "AuthService.GetDeviceLogin",
    call: async ({ c, deviceCode }) => c.auth.getDeviceLogin({ userCode: await deviceCode() }),
    other: "ok",
    owner: "ok",
  },
  {
    // Approving takes a browser session (oauth.test.ts): an API token cannot mint another this way.
    name: "AuthService.ApproveDeviceLogin",
    call: async ({ c, deviceCode }) => c.auth.approveDeviceLogin({ userCode: await deviceCode(), approve: true }),
    other: Code.PermissionDenied,
    owner: Code.PermissionDenied,
  },
  { name: "ReplService.ListTemplates", call: ({ c }) => c.repl.listTemplates({}), other: "ok", owner: "ok" },
  {
    name: "ReplService.CreateRepl",
    call: ({ c }) => c.repl.createRepl({ name: "m", template: "node" }),
    other: "ok",
    owner: "ok",
  },
  { name: "ReplService.ListRepls", call: ({ c }) => c.repl.listRepls({}), other: "ok", owner: "ok" },
  {
    name: "ReplService.GetRepl",
    call: ({ c, replId }) => c.repl.getRepl({ replId }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.StartRepl",
    call: async ({ c, fresh }) => c.repl.startRepl({ replId: await fresh() }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.StopRepl",
    call: async ({ c, fresh }) => c.repl.stopRepl({ replId: await fresh() }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.DeleteRepl",
    call: async ({ c, fresh }) => c.repl.deleteRepl({ replId: await fresh() }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.SetEgressPolicy",
    call: ({ c, replId }) => c.repl.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.WatchRepl",
    call: async ({ c, replId }) => {
      const abort = new AbortController();
      try {
        for await (const m of c.repl.watchRepl({ replId }, { signal: abort.signal })) return m;
      } finally {
        abort.abort();
      }
    },
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "RunnerControlService.Heartbeat",
    call: ({ c, replId }) => c.control.heartbeat({ replId, runnerId: "run-x" }),
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.ReportIdle",
    call: ({ c, replId }) => c.control.reportIdle({ replId, runnerId: "run-x" }),
    other: U,
    owner: U,
  },
];

/** Every method of the services core serves, as "Service.Method". */
const served = [AuthService, ReplService, RunnerControlService].flatMap((s) =>
  s.methods.map((m) => `${s.name}.${m.name}`),
);

function expected(rpc: Rpc, who: Who): Expect {
  if (who === "owner") return rpc.owner;
  if (who === "other user") return rpc.other;
  return U;
}

describe("core authorization matrix", () => {
  let t: TestCore;
  const secrets = {} as Record<Who, string | undefined>;
  let ownerClients: Clients;

  before(async () => {
    t = await startTestCore({ quota: 100 });
    secrets.anonymous = undefined;
    secrets.owner = await t.token("alice");
    secrets["other user"] = await t.token("bob");
    const revoked = await issueApiToken(t.state, "alice", "revoked");
    await t.state.deleteApiToken("alice", revoked.record.tokenId);
    secrets["revoked token"] = revoked.secret;
    const expiredSecret = "dvx_expiredexpiredexpiredexpiredexpiredexpir";
    await t.state.putApiToken({
      tokenId: "expired1",
      userId: "alice",
      name: "old",
      hash: sha256(expiredSecret),
      createTime: Date.now() - 10_000,
      expireTime: Date.now() - 1000,
      lastUseTime: 0,
    });
    secrets["expired token"] = expiredSecret;
    ownerClients = t.clients({ bearer: secrets.owner });
  });
  after(() => t?.close());

  for (const rpc of rpcs) {
    for (const who of everyone) {
      const want = expected(rpc, who);
      it(`${rpc.name} as ${who} → ${want === "ok" ? "OK" : Code[want]}`, async () => {
        const { repl } = await ownerClients.repl.createRepl({ name: "target", template: "node" });
        // A token of the owner's that this call may revoke, so the owner's own secret stays valid.
        const spare = await issueApiToken(t.state, "alice", "spare");
        const ctx: Ctx = {
          c: t.clients({ bearer: secrets[who] }),
          replId: repl!.replId,
          ownerTokenId: spare.record.tokenId,
          fresh: async () => repl!.replId,
          async deviceCode() {
            const userCode = [...randomBytes(8)].map((b) => "BCDFGHJKLMNPQRSTVWXZ"[b % 20]).join("");
            const now = Date.now();
            const grant = {
              deviceHash: "0".repeat(64),
              clientName: "matrix",
              createTime: now,
              expireTime: now + 60_000,
            };
            await t.state.putDeviceGrant({ ...grant, userCode, status: "pending" });
            return userCode;
          },
        };
        let got: Expect = "ok";
        try {
          await rpc.call(ctx);
        } catch (e) {
          got = ConnectError.from(e).code;
          if (got === Code.Internal || got === Code.Unknown) throw e;
        }
        assert.equal(got === "ok" ? "ok" : Code[got], want === "ok" ? "ok" : Code[want], String(got));
        if (who === "owner" || who === "other user") {
          // The valid secrets keep working after the call (Logout ends sessions, not tokens).
          await ownerClients.auth.getCurrentUser({});
        }
      });
    }
  }

  it("covers every RPC core serves", () => {
    const listed = new Set(rpcs.map((r) => r.name.split(" ")[0]));
    assert.deepEqual(
      served.filter((m) => !listed.has(m)),
      [],
    );
  });

  it("AdminService is not served on core's port (nor on its runners' socket, the same server), whatever the credential", async () => {
    for (const who of everyone) {
      const transport = createConnectTransport({
        baseUrl: t.core.url,
        httpVersion: "1.1",
        interceptors: secrets[who] ? [bearerAuth(secrets[who]!)] : [],
      });
      const admin = createCoreAdminClient(transport);
      for (const call of [
        () => admin.createUserToken({ userId: "mallory", name: "x" }),
        () => admin.createLoginLink({ userId: "alice" }),
      ]) {
        await assert.rejects(call(), (e) => ConnectError.from(e).code === Code.Unimplemented, who);
      }
    }
    assert.deepEqual(await t.state.listApiTokens("mallory"), []);
  });

  it("a runner's control credential works on RunnerControlService only", async () => {
    const { repl } = await ownerClients.repl.createRepl({ name: "runner", template: "node" });
    await ownerClients.repl.startRepl({ replId: repl!.replId });
    const started = t.driver.starts.at(-1)!;
    const runner = t.clients({ bearer: started.controlToken });
    const hb = await runner.control.heartbeat({ replId: repl!.replId, runnerId: started.runnerId });
    assert.equal(hb.unknownRunner, false);
    await assert.rejects(runner.repl.listRepls({}), (e) => ConnectError.from(e).code === U);
    await assert.rejects(runner.auth.getCurrentUser({}), (e) => ConnectError.from(e).code === U);
    await assert.rejects(
      runner.control.heartbeat({ replId: repl!.replId, runnerId: "run-someone-else" }),
      (e) => ConnectError.from(e).code === Code.PermissionDenied,
    );
    const forged = t.clients({ bearer: `${started.controlToken.slice(0, -4)}AAAA` });
    await assert.rejects(
      forged.control.heartbeat({ replId: repl!.replId, runnerId: started.runnerId }),
      (e) => ConnectError.from(e).code === U,
    );
  });
});
