/**
 * A preview link's credential (RunnerAccess.preview_token, from the real embedded core's StartRepl)
 * opens the repl's preview and nothing else: FileService, TerminalService, ProcessService,
 * StatusService and the terminal WebSocket bridge refuse it with PermissionDenied.
 */
import assert from "node:assert/strict";
import type { RunnerAccess } from "../../../gen/devex/core/v1/repl_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { previewFetch } from "../../../lib/testing/preview-fetch.js";
import { codeOf, upgradeStatus } from "../../runner/test/helpers.js";
import { type Embedded, startEmbedded } from "./embedded.js";

describe("preview credentials grant preview only", function () {
  this.timeout(60_000);
  let e: Embedded;
  let access: RunnerAccess;
  let full: RunnerClients;
  let previewOnly: RunnerClients;

  before(async () => {
    e = await startEmbedded({ poolSize: 1 });
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "p", template: "node" });
    access = (await core.repls.startRepl({ replId: repl!.replId })).runner!;
    full = e.runner(access);
    previewOnly = e.runner({ url: access.url, token: access.previewToken });
  });
  after(() => e?.close());

  it("StartRepl hands out a separate preview token", () => {
    assert.ok(access.previewToken);
    assert.notEqual(access.previewToken, access.token);
  });

  it("is refused by FileService, TerminalService, ProcessService, StatusService and the terminal bridge", async () => {
    const refused = {
      readFile: await codeOf(previewOnly.files.readFile({ path: "package.json" })),
      writeFile: await codeOf(previewOnly.files.writeFile({ path: "x.txt", content: Buffer.from("x") })),
      listDirectory: await codeOf(previewOnly.files.listFiles({ path: "" })),
      createTerminal: await codeOf(previewOnly.terminals.createTerminal({ command: ["true"] })),
      listTerminals: await codeOf(previewOnly.terminals.listTerminals({})),
      startProcess: await codeOf(previewOnly.processes.startProcess({ command: { argv: ["true"] } })),
      exec: await codeOf(
        (async () => {
          for await (const _ of previewOnly.processes.exec({ command: { argv: ["true"] } }));
        })(),
      ),
      getStatus: await codeOf(previewOnly.status.getStatus({})),
    };
    assert.deepEqual(refused, {
      readFile: "PermissionDenied",
      writeFile: "PermissionDenied",
      listDirectory: "PermissionDenied",
      createTerminal: "PermissionDenied",
      listTerminals: "PermissionDenied",
      startProcess: "PermissionDenied",
      exec: "PermissionDenied",
      getStatus: "PermissionDenied",
    });
    const { terminal } = await full.terminals.createTerminal({ command: ["sleep", "30"] });
    const bridge = `${access.url}${access.websocketPath}${terminal!.terminalId}`;
    assert.equal(await upgradeStatus(bridge, access.previewToken), 403);
    assert.equal(await upgradeStatus(bridge, access.token), 101);
  });

  it("still opens the preview, as a link with ?token= and then through the runner's cookie", async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await full.processes.startProcess({
      command: {
        argv: ["node", "-e", `require("http").createServer((q, r) => r.end("hello " + q.url)).listen(${port})`],
      },
    });
    const page = access.previewUrlTemplate.replace("{port}", String(port));
    let res: Response | undefined;
    for (let i = 0; i < 100 && res?.status !== 200; i++) {
      res = await previewFetch(`${page}?token=${encodeURIComponent(access.previewToken)}`);
      if (res.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(res?.status, 200);
    assert.equal(await res!.text(), "hello /");
    const cookie = res!.headers.get("set-cookie")?.split(";")[0];
    assert.ok(cookie, "the runner sets its preview cookie");
    const sub = await previewFetch(`${page}app.js`, { headers: { cookie } });
    assert.equal(await sub.text(), "hello /app.js");
  });
});
