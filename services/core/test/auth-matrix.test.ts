/**
 * Every core RPC × {anonymous, other user, owner, revoked token, expired token}. Another user's repl
 * is NotFound (never PermissionDenied); user credentials never work on RunnerControlService.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuditService } from "../../../gen/devex/core/v1/audit_pb.js";
import { AuthService } from "../../../gen/devex/core/v1/auth_pb.js";
import { CheckpointService } from "../../../gen/devex/core/v1/checkpoint_pb.js";
import { EgressMode, PreviewVisibility, ReplService } from "../../../gen/devex/core/v1/repl_pb.js";
import { RunnerControlService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { bearerAuth, createCoreAdminClient } from "../../../lib/client/clients.js";
import { ALL_API_SCOPES, type ApiScope } from "../../../lib/contracts/api-scopes.js";
import { scopeRules } from "../src/auth/scopes.js";
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
    // Device logins are answered in a browser session (oauth.test.ts, device-login.e2e), never with a token.
    name: "AuthService.GetDeviceLogin",
    call: async ({ c, deviceCode }) => c.auth.getDeviceLogin({ userCode: await deviceCode() }),
    other: Code.PermissionDenied,
    owner: Code.PermissionDenied,
  },
  {
    // An API token cannot mint another this way.
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
  {
    // This core has no GitHub sign-in (git-github.e2e lists with a grant).
    name: "ReplService.ListGitHubRepositories",
    call: ({ c }) => c.repl.listGitHubRepositories({}),
    other: Code.FailedPrecondition,
    owner: Code.FailedPrecondition,
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
    name: "ReplService.SetPreviewVisibility",
    call: ({ c, replId }) => c.repl.setPreviewVisibility({ replId, port: 3000, visibility: PreviewVisibility.PRIVATE }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    // Past authorization, a private port has no links.
    name: "ReplService.CreatePreviewLink",
    call: ({ c, replId }) => c.repl.createPreviewLink({ replId, port: 3000 }),
    other: Code.NotFound,
    owner: Code.FailedPrecondition,
  },
  {
    name: "ReplService.ListEnvironmentVariables",
    call: ({ c, replId }) => c.repl.listEnvironmentVariables({ replId }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.SetEnvironmentVariable",
    call: ({ c, replId }) => c.repl.setEnvironmentVariable({ replId, name: "MATRIX", value: "1", secret: true }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "ReplService.DeleteEnvironmentVariable",
    call: ({ c, replId }) => c.repl.deleteEnvironmentVariable({ replId, name: "MATRIX" }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    // A fresh stopped repl each time (the matrix calls it once per credential and scope set).
    name: "ReplService.SaveTemplate",
    call: async ({ c, fresh }) => c.repl.saveTemplate({ replId: await fresh(), title: "matrix" }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    // Nobody has this template: past authorization, NotFound for the owner too.
    name: "ReplService.DeleteTemplate",
    call: ({ c }) => c.repl.deleteTemplate({ name: "t000000000000" }),
    other: Code.NotFound,
    owner: Code.NotFound,
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
    name: "CheckpointService.CreateCheckpoint",
    call: ({ c, replId }) => c.checkpoints.createCheckpoint({ replId, name: "matrix" }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "CheckpointService.ListCheckpoints",
    call: ({ c, replId }) => c.checkpoints.listCheckpoints({ replId }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "CheckpointService.DeleteCheckpoint (no such checkpoint)",
    call: ({ c, replId }) => c.checkpoints.deleteCheckpoint({ replId, checkpointId: "000000000-00000000" }),
    other: Code.NotFound,
    owner: Code.NotFound,
  },
  {
    name: "CheckpointService.DiffCheckpoints (no such checkpoint)",
    call: ({ c, replId }) => c.checkpoints.diffCheckpoints({ replId, fromCheckpointId: "000000000-00000000" }),
    other: Code.NotFound,
    owner: Code.NotFound,
  },
  {
    name: "CheckpointService.RestoreCheckpoint (no such checkpoint)",
    call: ({ c, replId }) => c.checkpoints.restoreCheckpoint({ replId, checkpointId: "000000000-00000000" }),
    other: Code.NotFound,
    owner: Code.NotFound,
  },
  {
    name: "CheckpointService.ForkRepl",
    call: async ({ c, fresh }) => c.checkpoints.forkRepl({ replId: await fresh() }),
    other: Code.NotFound,
    owner: "ok",
  },
  {
    name: "AuditService.ListAuditEvents",
    call: ({ c }) => c.audit.listAuditEvents({}),
    other: "ok",
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
  {
    name: "RunnerControlService.ReportAudit",
    call: ({ c, replId }) => c.control.reportAudit({ replId, runnerId: "run-x" }),
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.ClaimSetup",
    call: ({ c, replId }) => c.control.claimSetup({ replId, runnerId: "run-x" }),
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.ReportSetup",
    call: ({ c, replId }) => c.control.reportSetup({ replId, runnerId: "run-x", exitCode: 0 }),
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.WatchEnvironment",
    call: async ({ c, replId }) => {
      for await (const m of c.control.watchEnvironment({ replId, runnerId: "run-x" })) return m;
    },
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.GetGitCredential",
    call: ({ c, replId }) => c.control.getGitCredential({ replId, runnerId: "run-x" }),
    other: U,
    owner: U,
  },
  {
    name: "RunnerControlService.WatchPreviewSharing",
    call: async ({ c, replId }) => {
      for await (const m of c.control.watchPreviewSharing({ replId, runnerId: "run-x" })) return m;
    },
    other: U,
    owner: U,
  },
];

/** Which API scopes open each RPC, as issue 16 defines them (core's own table is auth/scopes.ts). */
const opens: Record<string, readonly string[] | "runners only"> = {
  "AuthService.GetCurrentUser": ALL_API_SCOPES,
  "AuthService.CreateApiToken": ["admin"],
  "AuthService.ListApiTokens": ["admin"],
  "AuthService.RevokeApiToken": ["admin"],
  "AuthService.Logout": ALL_API_SCOPES,
  "AuthService.GetDeviceLogin": ALL_API_SCOPES,
  "AuthService.ApproveDeviceLogin": ALL_API_SCOPES,
  "ReplService.ListTemplates": ["repls:read"],
  "ReplService.CreateRepl": ["repls:write"],
  "ReplService.ListGitHubRepositories": ["repls:read"],
  "ReplService.ListRepls": ["repls:read"],
  "ReplService.GetRepl": ["repls:read"],
  "ReplService.StartRepl": ["repls:write", "files:read", "files:write", "exec"],
  "ReplService.StopRepl": ["repls:write"],
  "ReplService.DeleteRepl": ["repls:write"],
  "ReplService.SetEgressPolicy": ["repls:write"],
  "ReplService.SetPreviewVisibility": ["repls:write"],
  "ReplService.CreatePreviewLink": ["repls:write"],
  "ReplService.ListEnvironmentVariables": ["repls:read"],
  "ReplService.SetEnvironmentVariable": ["exec"],
  "ReplService.DeleteEnvironmentVariable": ["exec"],
  "ReplService.WatchRepl": ["repls:read"],
  "ReplService.SaveTemplate": ["exec"],
  "ReplService.DeleteTemplate": ["repls:write"],
  "CheckpointService.CreateCheckpoint": ["repls:write"],
  "CheckpointService.ListCheckpoints": ["repls:read"],
  "CheckpointService.DeleteCheckpoint": ["repls:write"],
  "CheckpointService.DiffCheckpoints": ["files:read", "files:write"],
  "CheckpointService.RestoreCheckpoint": ["files:write"],
  "CheckpointService.ForkRepl": ["repls:write"],
  "AuditService.ListAuditEvents": ["admin"],
  // No user credential works there, whatever its scopes (Unauthenticated).
  "RunnerControlService.Heartbeat": "runners only",
  "RunnerControlService.ReportIdle": "runners only",
  "RunnerControlService.ReportAudit": "runners only",
  "RunnerControlService.ClaimSetup": "runners only",
  "RunnerControlService.ReportSetup": "runners only",
  "RunnerControlService.WatchPreviewSharing": "runners only",
  "RunnerControlService.WatchEnvironment": "runners only",
  "RunnerControlService.GetGitCredential": "runners only",
};

/** Every method of the services core serves, as "Service.Method". */
const served = [AuthService, ReplService, CheckpointService, AuditService, RunnerControlService].flatMap((s) =>
  s.methods.map((m) => `${s.name}.${m.name}`),
);

function expected(rpc: Rpc, who: Who): Expect {
  if (who === "owner") return rpc.owner;
  if (who === "other user") return rpc.other;
  return U;
}

/** The scope sets of the owner's scoped tokens: one scope each, and the read-only agent's pair. */
const scopeSets: ApiScope[][] = [...ALL_API_SCOPES.map((s) => [s]), ["repls:read", "files:read"]];

describe("core authorization matrix", () => {
  const scoped = new Map<string, string>();
  let t: TestCore;
  const secrets = {} as Record<Who, string | undefined>;
  let ownerClients: Clients;

  before(async () => {
    t = await startTestCore({ quota: 1000 });
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
    for (const set of scopeSets) {
      scoped.set(set.join(" "), (await issueApiToken(t.state, "alice", "scoped", 3_600_000, Date.now(), set)).secret);
    }
  });
  after(() => t?.close());

  /** A fresh repl of the owner's and a spare token to revoke, with the calls made by `bearer`. */
  async function ctxFor(bearer: string | undefined): Promise<Ctx> {
    const { repl } = await ownerClients.repl.createRepl({ name: "target", template: "node" });
    // A token of the owner's that this call may revoke, so the owner's own secret stays valid.
    const spare = await issueApiToken(t.state, "alice", "spare");
    return {
      c: t.clients({ bearer }),
      replId: repl!.replId,
      ownerTokenId: spare.record.tokenId,
      fresh: async () => repl!.replId,
      async deviceCode() {
        const userCode = [...randomBytes(8)].map((b) => "BCDFGHJKLMNPQRSTVWXZ"[b % 20]).join("");
        const now = Date.now();
        const grant = { deviceHash: "0".repeat(64), clientName: "matrix", createTime: now, expireTime: now + 60_000 };
        await t.state.putDeviceGrant({ ...grant, userCode, status: "pending" });
        return userCode;
      },
    };
  }

  /** What the call did: "ok" or the code it failed with (never Internal or Unknown). */
  async function outcome(rpc: Rpc, ctx: Ctx): Promise<string> {
    try {
      await rpc.call(ctx);
      return "ok";
    } catch (e) {
      const got = ConnectError.from(e).code;
      if (got === Code.Internal || got === Code.Unknown) throw e;
      return Code[got];
    }
  }
  const named = (want: Expect) => (want === "ok" ? "ok" : Code[want]);

  for (const rpc of rpcs) {
    for (const who of everyone) {
      const want = expected(rpc, who);
      it(`${rpc.name} as ${who} → ${want === "ok" ? "OK" : Code[want]}`, async () => {
        assert.equal(await outcome(rpc, await ctxFor(secrets[who])), named(want));
        if (who === "owner" || who === "other user") {
          // The valid secrets keep working after the call (Logout ends sessions, not tokens).
          await ownerClients.auth.getCurrentUser({});
        }
      });
    }
  }

  // The owner's tokens with scopes (made in before): one RPC works as for the unscoped owner when
  // one of its scopes is in the set, else it is PermissionDenied.
  for (const rpc of rpcs) {
    for (const set of scopeSets) {
      const open = opens[rpc.name.split(" ")[0]];
      const want =
        open === "runners only" || open.some((s) => set.includes(s as ApiScope)) ? rpc.owner : Code.PermissionDenied;
      it(`${rpc.name} with scopes ${set.join(" ")} → ${named(want)}`, async () => {
        assert.equal(await outcome(rpc, await ctxFor(scoped.get(set.join(" ")))), named(want));
      });
    }
  }

  it("core has a scope rule for every user RPC (auth/scopes.ts; one missing is closed to scoped tokens)", () => {
    const users = [AuthService, ReplService, AuditService].flatMap((svc) =>
      svc.methods.map((m) => `${svc.typeName}/${m.name}`),
    );
    assert.deepEqual(
      users.filter((m) => !scopeRules[m]),
      [],
    );
  });

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
        () => admin.listAuditEvents({}),
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
