/**
 * The embedded setup end to end, through public APIs only (the shared clients over one origin):
 * core + local driver + real runner processes in the bwrap sandbox, Connect over HTTP/1.1 through
 * core's /<replId>/ proxy.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, type ConnectError } from "@connectrpc/connect";
import { WebSocket } from "ws";
import { ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { listAll } from "../../../lib/blob/store.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { previewFetch } from "../../../lib/testing/preview-fetch.js";
import { type Embedded, runInTerminal, startEmbedded } from "./embedded.js";

describe("embedded setup end to end (local driver, one origin)", function () {
  this.timeout(60_000);
  let e: Embedded;
  before(async () => {
    e = await startEmbedded();
  });
  after(async () => {
    await e?.close();
  });

  it("token → create from node → start → write → node index.js in a terminal → stop → start → file kept → delete → prefix gone", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "e2e", template: "node" });
    const replId = repl!.replId;
    const prefix = `repl/alice/${replId}/`;
    // This embedded core's driver has no outbound network set up (egress not configured): the repl says so.
    assert.match(repl!.egressNotEnforced, /not configured/);

    const first = await core.repls.startRepl({ replId });
    assert.equal(first.repl?.status, ReplStatus.RUNNING);
    assert.equal(first.runner?.url, `${e.core.publicUrl}/${replId}`, "runners are reached through core's origin");
    let runner = e.runner(first.runner!);
    assert.match(
      Buffer.from((await runner.files.readFile({ path: "index.js" })).content).toString(),
      /Hello from Devex/,
    );
    await runner.files.writeFile({ path: "index.js", content: Buffer.from('console.log("answer", 6 * 7);\n') });
    await runner.files.writeFile({ path: "notes/todo.txt", content: Buffer.from("keep me"), createParents: true });

    const { terminal } = await runner.terminals.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    const run = await runInTerminal(runner, terminal!.terminalId, "node index.js");
    assert.equal(run.status, 0);
    assert.match(run.output, /answer 42/);

    const stopped = await core.repls.stopRepl({ replId });
    assert.equal(stopped.repl?.status, ReplStatus.STOPPED);
    assert.ok(stopped.repl?.persistTime);
    await assert.rejects(
      runner.files.readFile({ path: "index.js" }),
      (err: ConnectError) => err.code === Code.Unavailable,
    );

    const second = await core.repls.startRepl({ replId });
    runner = e.runner(second.runner!);
    assert.equal(Buffer.from((await runner.files.readFile({ path: "notes/todo.txt" })).content).toString(), "keep me");
    assert.match(Buffer.from((await runner.files.readFile({ path: "index.js" })).content).toString(), /6 \* 7/);

    await core.repls.deleteRepl({ replId });
    assert.deepEqual(await listAll(e.blobs, prefix), []);
    assert.equal((await e.driver.list(AbortSignal.timeout(5000))).filter((r) => r.replId === replId).length, 0);
    await assert.rejects(core.repls.getRepl({ replId }), (err: ConnectError) => err.code === Code.NotFound);
  });

  it("the terminal WebSocket bridge works through core's origin (/<replId>/ws/terminals/…)", async () => {
    const core = await e.login("carol");
    const { repl } = await core.repls.createRepl({ name: "ws", template: "node" });
    const replId = repl!.replId;
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = e.runner(access!);
    const { terminal } = await runner.terminals.createTerminal({ command: ["bash", "--norc", "--noprofile"] });
    const wsUrl = `${access!.url.replace(/^http/, "ws")}${access!.websocketPath}${terminal!.terminalId}`;
    assert.ok(wsUrl.startsWith(`${e.core.url.replace(/^http/, "ws")}/${replId}/`));
    const ws = new WebSocket(wsUrl, ["devex.terminal.v1", `bearer.${access!.token}`]);
    let text = "";
    ws.on("message", (data, isBinary) => {
      if (isBinary) text += data.toString();
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(Buffer.from("echo through-the-proxy-$((6*7))\n"));
    const deadline = Date.now() + 10_000;
    while (!text.includes("through-the-proxy-42") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    ws.close();
    assert.match(text, /through-the-proxy-42/);
    await core.repls.deleteRepl({ replId });
  });

  it("previews live on their own origin, and a dev server never sees core's session cookie", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "preview", template: "node" });
    const replId = repl!.replId;
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = e.runner(access!);
    // A dev server that answers with the Cookie header it received.
    const server =
      'require("http").createServer((q, s) => s.end(JSON.stringify({ cookie: q.headers.cookie ?? null }))).listen(3000, "127.0.0.1");';
    await runner.files.writeFile({ path: "echo-cookie.cjs", content: Buffer.from(server) });
    await runner.processes.startProcess({ command: { argv: ["node", "echo-cookie.cjs"] }, name: "echo-cookie" });

    const preview = new URL(access!.previewUrlTemplate.replace("{port}", "3000"));
    const previewPort = new URL(e.core.previewUrl!).port;
    assert.equal(
      preview.href,
      `http://${replId}.localhost:${previewPort}/preview/3000/`,
      "an origin of the repl's own",
    );
    assert.notEqual(preview.origin, new URL(e.core.publicUrl).origin, "previews are not on core's origin");
    const token = `?token=${encodeURIComponent(access!.token)}`;
    // The browser sends every cookie of the host (cookies ignore ports): core's session, the
    // runner's preview token and the app's own.
    const cookie = "devex_session=the-users-core-session; devex_preview=anything; app=1";
    let body: { cookie: string | null } | undefined;
    for (let i = 0; i < 100 && !body; i++) {
      const res = await previewFetch(`${preview.href}${token}`, { headers: { cookie } });
      if (res.status === 200) body = (await res.json()) as { cookie: string | null };
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(body, "the dev server never answered on the preview origin");
    assert.equal(body.cookie, "app=1");

    // Core's origin does not serve the preview, the preview port serves no preview below a path
    // shared by every repl, and the repl's preview origin serves neither core's API nor the runner's.
    const onCore = await fetch(`${e.core.publicUrl}/${replId}/preview/3000/${token}`);
    assert.equal(onCore.status, 404);
    const shared = await previewFetch(`${e.core.previewUrl}/${replId}/preview/3000/${token}`);
    assert.equal(shared.status, 404);
    assert.match(await shared.text(), /origin of their own/);
    const api = await previewFetch(`${preview.origin}/devex.core.v1.ReplService/ListRepls`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie },
      body: "{}",
    });
    assert.equal(api.status, 404);
    const runnerApi = await previewFetch(`${preview.origin}/devex.runner.v1.FileService/ListFiles`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${access!.token}` },
      body: "{}",
    });
    assert.equal(runnerApi.status, 404);
    await core.repls.deleteRepl({ replId });
  });

  it("StartRepl does not hand out a runner that died: it starts a new one", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "phoenix", template: "node" });
    const replId = repl!.replId;
    await core.repls.startRepl({ replId });
    // Kill the runner behind core's back (a crash, or a reboot under a core that keeps its state).
    const runnersDir = join(e.dir, "local", "runners");
    let record: { pid: number; runnerId: string } | undefined;
    for (const proc of await readdir(runnersDir)) {
      const r = JSON.parse(await readFile(join(runnersDir, proc, "record.json"), "utf8").catch(() => "{}"));
      if (r.replId === replId) record = r;
    }
    assert.ok(record, "no runner record for the repl");
    process.kill(record.pid, "SIGKILL");
    for (let i = 0; i < 100 && (await e.driver.status(record.runnerId, AbortSignal.timeout(5000))) === "running"; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Its session is still valid (no heartbeat has been missed yet), but the runner is gone.
    const again = await core.repls.startRepl({ replId });
    assert.equal(again.repl?.status, ReplStatus.RUNNING);
    const runner = e.runner(again.runner!);
    assert.match(
      Buffer.from((await runner.files.readFile({ path: "index.js" })).content).toString(),
      /Hello from Devex/,
    );
    await core.repls.deleteRepl({ replId });
  });

  it("WatchRepl streams restore progress while a start runs", async () => {
    const core = await e.login("bob");
    const { repl } = await core.repls.createRepl({ name: "watch", template: "node" });
    const replId = repl!.replId;
    const abort = new AbortController();
    const phases: string[] = [];
    const watching = (async () => {
      try {
        for await (const m of core.repls.watchRepl({ replId }, { signal: abort.signal })) {
          if (m.progress?.phase) phases.push(m.progress.phase);
          if (m.repl?.status === ReplStatus.RUNNING) return;
        }
      } catch {}
    })();
    await new Promise((r) => setTimeout(r, 100));
    await core.repls.startRepl({ replId });
    await Promise.race([watching, new Promise((r) => setTimeout(r, 5000))]);
    abort.abort();
    assert.ok(phases.includes("restore"), `phases seen: ${phases.join(",")}`);
    await core.repls.deleteRepl({ replId });
  });
});

describe("idle stop, end to end", function () {
  this.timeout(60_000);
  let e: Embedded;
  before(async () => {
    e = await startEmbedded({ idleTimeoutMs: 1000 });
  });
  after(async () => {
    await e?.close();
  });

  it("a runner's idle report makes core persist the workspace and stop the repl", async () => {
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "idle", template: "node" });
    const replId = repl!.replId;
    const { runner: access } = await core.repls.startRepl({ replId });
    await e.runner(access!).files.writeFile({ path: "last-words.txt", content: Buffer.from("persisted on idle") });
    const deadline = Date.now() + 20_000;
    let status: ReplStatus | undefined;
    while (Date.now() < deadline) {
      status = (await core.repls.getRepl({ replId })).repl?.status;
      if (status === ReplStatus.STOPPED) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, ReplStatus.STOPPED);
    const { repl: after } = await core.repls.getRepl({ replId });
    assert.match(after?.lastError ?? "", /^$/);
    assert.ok(after?.persistTime);
    const stored = await readStoredWorkspace(e.blobs, `repl/alice/${replId}/`);
    assert.equal(stored.get("last-words.txt")?.toString(), "persisted on idle");
    assert.deepEqual(await e.driver.list(AbortSignal.timeout(2000)), []);
  });
});
