/**
 * The audit log end to end, on the embedded setup with real runners: a scripted session (a login
 * link, API tokens, a device login, a repl's life with a terminal, a command and file writes through
 * its runner, a network policy, a refused call and a failed one, a revocation, a logout) produces the
 * expected events in order, readable through AuditService by the user, through the admin socket (and
 * core's CLI) by the operator, and by no other user; and no secret of the session is in any event.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type AuditEvent, AuditEventSchema } from "../../../gen/devex/core/v1/audit_pb.js";
import { EgressMode, PreviewVisibility } from "../../../gen/devex/core/v1/repl_pb.js";
import { type CoreClients, createCoreClients } from "../../../lib/client/clients.js";
import { coreAdminClientFor, coreClientsFor } from "../../../lib/client/node.js";
import { adminSocketPath } from "../src/admin/admin-socket.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Embedded, startEmbedded } from "./embedded.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));

const core = "devex.core.v1.";
const runnerRpc = "devex.runner.v1.";

/** Core clients that send a browser's session cookie. */
function sessionClients(url: string, cookie: string): CoreClients {
  const withCookie: Interceptor = (next) => (req) => {
    req.header.set("cookie", cookie);
    return next(req);
  };
  return createCoreClients(createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [withCookie] }));
}

async function allEvents(list: (pageToken: string) => Promise<{ events: AuditEvent[]; nextPageToken: string }>) {
  const events: AuditEvent[] = [];
  let token = "";
  do {
    const page = await list(token);
    events.push(...page.events);
    token = page.nextPageToken;
  } while (token);
  return events.reverse(); // oldest first
}

/** An event as the test compares it: "<rpc> <token> <outcome> k=v…" (runner file changes by path). */
const line = (e: AuditEvent, tokens: Record<string, string>) => {
  const who = tokens[e.tokenId] ?? e.tokenId;
  const keep = [
    "name",
    "decision",
    "mode",
    "program",
    "path",
    "revoked_token_id",
    "template",
    "port",
    "visibility",
    "ttl_seconds",
    "secret",
  ];
  const details = keep
    .filter((k) => e.details[k])
    .map((k) => `${k}=${k === "revoked_token_id" ? (tokens[e.details[k]] ?? e.details[k]) : e.details[k]}`);
  return [e.rpc.replace(core, "").replace(runnerRpc, ""), who, e.outcome, ...details].join(" ");
};

describe("audit log: a scripted session", function () {
  this.timeout(120_000);
  let e: Embedded;
  before(async () => {
    e = await startEmbedded({ quota: 5, poolSize: 1 });
  });
  after(() => e?.close());

  it("records the session in order, for the user and the operator only, with no secret in any event", async () => {
    const secrets: string[] = [];
    const url = e.core.url;

    // Sign in with the one-time login link.
    const link = e.core.loginLink!;
    secrets.push(link, new URL(link).searchParams.get("code")!);
    const signIn = await fetch(link, { redirect: "manual" });
    const cookie = /devex_session=([^;]+)/.exec(signIn.headers.get("set-cookie") ?? "")?.[1];
    assert.ok(cookie, "a session cookie");
    secrets.push(cookie);
    const session = sessionClients(url, `devex_session=${cookie}`);
    const userId = (await session.auth.getCurrentUser({})).user!.userId;

    // An API token for an agent, and a device login approved in the browser.
    const made = await session.auth.createApiToken({ name: "agent" });
    const agentId = made.token!.tokenId;
    secrets.push(made.secret);
    const form = (f: Record<string, string>) => ({ method: "POST", body: new URLSearchParams(f) });
    const code = await (await fetch(`${url}/auth/device/code`, form({ client_id: "devex-cli" }))).json();
    secrets.push(code.device_code, code.device_code.split(".")[1], code.user_code, code.user_code.replace("-", ""));
    await session.auth.approveDeviceLogin({ userCode: code.user_code, approve: true });
    const grant = { client_id: "devex-cli", grant_type: "urn:ietf:params:oauth:grant-type:device_code" };
    const device = await (
      await fetch(`${url}/auth/device/token`, form({ ...grant, device_code: code.device_code }))
    ).json();
    assert.ok(device.access_token);
    secrets.push(device.access_token);

    // The agent's repl: created, started, a terminal, a command, file writes through its runner.
    const agent = coreClientsFor(url, { token: made.secret });
    const { repl } = await agent.repls.createRepl({ name: "audited", template: "node" });
    const replId = repl!.replId;
    const { runner: access } = await agent.repls.startRepl({ replId });
    secrets.push(access!.token, access!.previewToken);
    const runner = e.runner(access!);
    const { terminal } = await runner.terminals.createTerminal({});
    for await (const _ of runner.processes.exec({ command: { argv: ["/bin/sh", "-c", "echo s3cr3t-arg"] } }));
    for (let i = 0; i < 3; i++) await runner.files.writeFile({ path: "notes.txt", content: Buffer.from(`v${i}`) });
    await runner.files.writeFile({ path: "other.txt", content: Buffer.from("x") });
    secrets.push("s3cr3t-arg");

    // Wait for the runner's report to reach core, so the order below is the order of the calls.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const { events } = await agent.audit.listAuditEvents({ replId });
      if (events.filter((x) => x.rpc.startsWith(runnerRpc)).length >= 4) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    // The browser's own writes are not recorded (they would drown the log); its start is.
    const { runner: browserAccess } = await session.repls.startRepl({ replId });
    secrets.push(browserAccess!.token, browserAccess!.previewToken);
    await e.runner(browserAccess!).files.writeFile({ path: "typed.txt", content: Buffer.from("y") });

    await agent.repls.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } });
    // Sharing a preview: the log says which port and for how long, never the link (it opens the preview).
    await agent.repls.setPreviewVisibility({ replId, port: 3000, visibility: PreviewVisibility.LINK });
    const shared = await agent.repls.createPreviewLink({ replId, port: 3000, ttl: { seconds: 600n, nanos: 0 } });
    secrets.push(shared.url, new URL(shared.url).searchParams.get("token")!);
    // A secret: the log names it, never its value.
    await agent.repls.setEnvironmentVariable({ replId, name: "API_KEY", value: "env-s3cr3t-value", secret: true });
    secrets.push("env-s3cr3t-value");
    await agent.repls.stopRepl({ replId });
    await agent.repls.deleteRepl({ replId });
    await assert.rejects(agent.repls.deleteRepl({ replId }), (x) => ConnectError.from(x).code === Code.NotFound);
    // A read-only token refused a write: recorded, with the token that tried.
    const reader = await session.auth.createApiToken({ name: "reader", scopes: ["repls:read"] });
    secrets.push(reader.secret);
    const readerId = reader.token!.tokenId;
    await assert.rejects(
      coreClientsFor(url, { token: reader.secret }).repls.createRepl({ name: "no", template: "node" }),
      (x) => ConnectError.from(x).code === Code.PermissionDenied,
    );
    await session.auth.revokeApiToken({ tokenId: agentId });

    const tokens = { [agentId]: "agent", [readerId]: "reader" };
    const mine = await allEvents((pageToken) => session.audit.listAuditEvents({ pageSize: 3, pageToken }));
    assert.deepEqual(
      mine.map((x) => line(x, tokens)),
      [
        "auth/login link ok",
        "AuthService/CreateApiToken session ok name=agent",
        "AuthService/ApproveDeviceLogin session ok decision=approved",
        "auth/device-token device ok name=devex CLI",
        "ReplService/CreateRepl agent ok name=audited template=node",
        "ReplService/StartRepl agent ok",
        "TerminalService/CreateTerminal agent ok program=shell",
        "ProcessService/Exec agent ok program=sh",
        ...fileWrites(mine),
        "ReplService/StartRepl session ok",
        "ReplService/SetEgressPolicy agent ok mode=deny_all",
        "ReplService/SetPreviewVisibility agent ok port=3000 visibility=link",
        "ReplService/CreatePreviewLink agent ok port=3000 ttl_seconds=600",
        "ReplService/SetEnvironmentVariable agent ok name=API_KEY secret=true",
        "ReplService/StopRepl agent ok",
        "ReplService/DeleteRepl agent ok",
        "ReplService/DeleteRepl agent not_found",
        "AuthService/CreateApiToken session ok name=reader",
        "ReplService/CreateRepl reader permission_denied name=no template=node",
        "AuthService/RevokeApiToken session ok revoked_token_id=agent",
      ],
    );
    // File writes: the agent's, coalesced by path (3 writes of notes.txt), none of the browser's.
    const writes = mine.filter((x) => x.rpc.endsWith("/WriteFile"));
    const count = (path: string) =>
      writes.filter((x) => x.details.path === path).reduce((n, x) => n + Number(x.details.count ?? 1), 0);
    assert.equal(count("notes.txt"), 3);
    assert.equal(count("other.txt"), 1);
    assert.equal(count("typed.txt"), 0);
    assert.ok(mine.every((x) => x.userId === userId));
    for (const x of mine) {
      assert.ok(["127.0.0.1", "::1"].includes(x.clientAddress), `${x.rpc} from ${x.clientAddress}`);
      assert.ok(x.time && x.eventId, "time and id");
    }
    const aboutTheRepl = (x: AuditEvent) => x.rpc.includes("ReplService/") || x.rpc.startsWith(runnerRpc);
    for (const x of mine.filter((x) => aboutTheRepl(x) && x.tokenId !== readerId))
      assert.equal(x.replId, replId, x.rpc);
    assert.match(mine.find((x) => x.outcome === "not_found")!.message, /not found/);
    assert.equal(mine.find((x) => x.rpc.endsWith("/CreateTerminal"))!.details.terminal_id, terminal!.terminalId);

    // The operator reads them too (and its own calls are recorded); another user sees none of them.
    const admin = coreAdminClientFor(adminSocketPath(e.dir));
    const linkAgain = await admin.createLoginLink({ userId });
    secrets.push(linkAgain.url, new URL(linkAgain.url).searchParams.get("code")!);
    const operator = await allEvents((pageToken) => admin.listAuditEvents({ pageToken }));
    assert.deepEqual(
      operator.map((x) => x.eventId),
      [...mine.map((x) => x.eventId), operator.at(-1)!.eventId],
    );
    assert.equal(line(operator.at(-1)!, tokens), "AdminService/CreateLoginLink operator ok");
    const bob = coreClientsFor(url, { token: (await issueApiToken(e.state, "bob", "b")).secret });
    await bob.repls.listRepls({});
    assert.deepEqual((await bob.audit.listAuditEvents({})).events, []);
    assert.deepEqual((await bob.audit.listAuditEvents({ replId })).events, []);

    // The user's CLI lists the same (the device login's token may do everything, so it may read them),
    // the operator's login link for them included.
    const devex = (...args: string[]) =>
      run(process.execPath, [`${root}cli/devex.mjs`, "audit", ...args], {
        env: { ...process.env, DEVEX_URL: url, DEVEX_TOKEN: device.access_token },
      });
    const own = (await devex("--json", "--limit", "1000")).stdout.trim().split("\n");
    assert.deepEqual(
      own.map((l) => JSON.parse(l).eventId),
      [...operator].reverse().map((x) => x.eventId),
      "the user's own, and the operator's login link for them",
    );
    const table = (await devex("--repl", replId, "--limit", "2")).stdout;
    assert.match(table, /^TIME +TOKEN +CLIENT +CALL +REPL +OUTCOME +DETAILS\n/);
    assert.match(table, /ReplService\/DeleteRepl +r[0-9a-f]{12} +not_found +"repl r[0-9a-f]{12} not found"/);
    assert.equal(table.trim().split("\n").length, 3);

    // Logging out is recorded; the operator's CLI prints it.
    await session.auth.logout({});
    const cli = await run(process.execPath, [`${root}dist/core/cli.mjs`, "audit", "--user", userId, "--json"], {
      env: { ...process.env, DEVEX_DATA_DIR: e.dir },
    });
    const printed = cli.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { rpc: string; tokenId: string });
    assert.equal(printed[0].rpc, `${core}AuthService/Logout`);
    assert.equal(printed.length, mine.length + 2);

    // No secret of the session in any event, as the API or the CLI gives them.
    const everything = [
      JSON.stringify(operator.map((x) => toJson(AuditEventSchema, x))),
      JSON.stringify(mine.map((x) => toJson(AuditEventSchema, x))),
      cli.stdout,
      own.join("\n"),
      table,
    ].join("\n");
    for (const secret of secrets)
      assert.ok(!everything.includes(secret), `a secret in the log: ${secret.slice(0, 12)}…`);
  });
});

/** The file write lines as recorded: notes.txt (coalesced, maybe across two reports), then other.txt. */
function fileWrites(events: AuditEvent[]): string[] {
  const writes = events.filter((x) => x.rpc.endsWith("/WriteFile"));
  assert.ok(writes.length >= 2 && writes.length <= 3, `${writes.length} write events`);
  return writes.map((x) => `FileService/WriteFile agent ok path=${x.details.path}`);
}
