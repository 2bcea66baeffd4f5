import assert from "node:assert/strict";
import type { Client } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { StatusService } from "../../../gen/devex/runner/v1/status_pb.js";
import { TerminalService } from "../../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerAdminService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import { createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";
import { codeOf, connectClient, REPL, startTestRunner, type TestRunner, upgradeStatus } from "./helpers.js";

describe("runner access control", () => {
  let t: TestRunner;
  let terminalId: string;
  const tokens: Record<string, string | undefined> = {};

  before(async () => {
    t = await startTestRunner();
    const forger = createTokenSigner(generateSigningKey().privateKeyPem);
    tokens.none = undefined;
    tokens.garbage = "not-a-token";
    tokens.forged = forger.mint({ aud: "runner", sub: "u", repl: REPL, scope: ["files", "terminals"] }, 600);
    tokens.expired = t.mint({}, 60, Date.now() - 3600_000);
    tokens.otherRepl = t.mint({ repl: "other-repl" });
    tokens.admin = t.signer.mint({ aud: "runner-admin", sub: "core", repl: REPL, scope: [] }, 600);
    tokens.noScope = t.mint({ scope: ["exec"] });
    const { terminal } = await connectClient(TerminalService, t.runner.url, t.token).createTerminal({
      command: ["sleep", "60"],
    });
    terminalId = terminal!.terminalId;
  });
  after(() => t?.close());

  const cases: Array<[string, string, number]> = [
    ["none", "Unauthenticated", 401],
    ["garbage", "Unauthenticated", 401],
    ["forged", "Unauthenticated", 401],
    ["expired", "Unauthenticated", 401],
    ["otherRepl", "PermissionDenied", 403],
    ["admin", "Unauthenticated", 401],
    ["noScope", "PermissionDenied", 403],
  ];

  for (const [name, code, status] of cases) {
    it(`token ${name}: ${code} over Connect, HTTP ${status} on the WebSocket and preview`, async () => {
      const files: Client<typeof FileService> = connectClient(FileService, t.runner.url, tokens[name]);
      assert.equal(await codeOf(files.listFiles({ path: "" })), code);
      const url = `${t.runner.url}/ws/terminals/${terminalId}`;
      const viaProtocol = await upgradeStatus(url, tokens[name]);
      assert.equal(viaProtocol, status);
      if (tokens[name]) assert.equal(await upgradeStatus(`${url}?token=${tokens[name]}`, undefined, []), status);
      const headers: Record<string, string> = tokens[name] ? { authorization: `Bearer ${tokens[name]}` } : {};
      const preview = await fetch(`${t.runner.url}/preview/3000/`, { headers });
      assert.equal(preview.status, name === "noScope" ? 403 : status);
    });
  }

  it("a valid token works everywhere", async () => {
    assert.equal(await codeOf(connectClient(FileService, t.runner.url, t.token).listFiles({ path: "" })), "OK");
    assert.equal(await upgradeStatus(`${t.runner.url}/ws/terminals/${terminalId}`, t.token), 101);
  });

  it("RunnerAdminService takes only runner-admin tokens for this repl", async () => {
    const admin = (tok?: string) => connectClient(RunnerAdminService, t.runner.url, tok);
    assert.equal(await codeOf(admin(t.token).flush({})), "Unauthenticated");
    assert.equal(await codeOf(admin(undefined).flush({})), "Unauthenticated");
    const other = t.signer.mint({ aud: "runner-admin", sub: "core", repl: "other", scope: [] }, 600);
    assert.equal(await codeOf(admin(other).flush({})), "PermissionDenied");
    assert.equal(await codeOf(admin(tokens.admin).flush({})), "OK");
  });

  it('a "files:read" token (a read-only API token\'s) opens every reading FileService method and nothing that writes', async () => {
    const reader = t.mint({ scope: ["files:read", "preview"] });
    const files = connectClient(FileService, t.runner.url, reader);
    await connectClient(FileService, t.runner.url, t.token).writeFile({ path: "r.txt", content: Buffer.from("x") });
    assert.equal(await codeOf(files.listFiles({ path: "" })), "OK");
    assert.equal(await codeOf(files.statFile({ path: "r.txt" })), "OK");
    assert.equal(await codeOf(files.readFile({ path: "r.txt" })), "OK");
    assert.equal(await codeOf(files.searchFiles({ path: "", contentPattern: "x" })), "OK");
    for (const write of [
      () => files.writeFile({ path: "r.txt", content: Buffer.from("y") }),
      () => files.editFile({ path: "r.txt", edits: [{ oldText: "x", newText: "y" }] }),
      () => files.createDirectory({ path: "d" }),
      () => files.deleteFile({ path: "r.txt" }),
      () => files.moveFile({ source: "r.txt", destination: "s.txt" }),
      () => files.copyFile({ source: "r.txt", destination: "s.txt" }),
    ])
      assert.equal(await codeOf(write()), "PermissionDenied");
    assert.equal(
      await codeOf(connectClient(TerminalService, t.runner.url, reader).listTerminals({})),
      "PermissionDenied",
    );
    assert.equal(await upgradeStatus(`${t.runner.url}/ws/terminals/${terminalId}`, reader), 403);
    // It opens GetStatus too, as any scope that opens an RPC does.
    assert.equal(await codeOf(connectClient(StatusService, t.runner.url, reader).getStatus({})), "OK");
    const content = await connectClient(FileService, t.runner.url, t.token).readFile({ path: "r.txt" });
    assert.equal(Buffer.from(content.content).toString(), "x", "nothing was written");
  });

  it('streaming transfers: a "files:read" token downloads (and mints download tickets) but never uploads', async () => {
    await connectClient(FileService, t.runner.url, t.token).writeFile({ path: "t.txt", content: Buffer.from("t") });
    const reader = connectClient(FileService, t.runner.url, t.mint({ scope: ["files:read", "preview"] }));
    const drain = async (s: AsyncIterable<unknown>) => {
      for await (const _ of s);
    };
    const upload = async function* () {
      yield { part: { case: "header" as const, value: { path: "u.txt" } } };
      yield { part: { case: "chunk" as const, value: Buffer.from("u") } };
    };
    assert.equal(await codeOf(drain(reader.downloadFile({ path: "t.txt" }))), "OK");
    assert.equal(await codeOf(drain(reader.downloadArchive({ path: "" }))), "OK");
    assert.equal(await codeOf(reader.createTransferTicket({ path: "t.txt", operation: 1 })), "OK");
    assert.equal(await codeOf(reader.createTransferTicket({ path: "u.txt", operation: 2 })), "PermissionDenied");
    assert.equal(await codeOf(reader.uploadFile(upload())), "PermissionDenied");
    assert.equal(await codeOf(reader.uploadArchive(upload())), "PermissionDenied");
    const preview = connectClient(FileService, t.runner.url, t.mint({ scope: ["preview"] }));
    assert.equal(await codeOf(drain(preview.downloadFile({ path: "t.txt" }))), "PermissionDenied");
    assert.equal(await codeOf(preview.createTransferTicket({ path: "t.txt", operation: 1 })), "PermissionDenied");
    const none = connectClient(FileService, t.runner.url);
    assert.equal(await codeOf(none.uploadFile(upload())), "Unauthenticated");
  });

  it("Health is open; GetStatus needs a token", async () => {
    const health = connectClient(Health, t.runner.url);
    assert.equal((await health.check({ service: "" })).status, 1);
    assert.equal(await codeOf(connectClient(StatusService, t.runner.url).getStatus({})), "Unauthenticated");
    const status = await connectClient(StatusService, t.runner.url, t.token).getStatus({});
    assert.equal(status.replId, REPL);
  });
});
