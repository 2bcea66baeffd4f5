/**
 * Escape table: from inside a repl's terminal (bubblewrap + rlimits, as the local driver sets it up),
 * every attempt to reach outside the repl fails. Checked on the host side where it matters (a write
 * that "succeeds" inside the sandbox's private tmpfs must not show up on the host).
 *
 * And the repl's own network works like a pod's: a server one command starts on 127.0.0.1 is
 * reachable from the repl's other commands and through the runner's preview route on core's preview origin,
 * but not from another repl, while the host's loopback stays out of reach.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, symlink, unlink } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { previewFetch } from "../../../lib/testing/preview-fetch.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";
import { type Embedded, runInTerminal, runnerRecordOf, startEmbedded } from "./embedded.js";

describe("sandbox escape table (bwrap active)", function () {
  this.timeout(60_000);
  let e: Embedded;
  let redis: TestRedis;
  let a: RunnerClients;
  let terminalId: string;
  let replA: string;
  let otherRepl: string;
  let accessA: { url: string; token: string; previewUrlTemplate: string };
  let b: RunnerClients;
  let terminalB: string;
  let hostListener: Server;
  let hostPort: number;

  before(async function () {
    requireProgram(this, "bwrap", (path) =>
      createSandbox({ mode: "auto", limits: defaultSandboxLimits }).kind === "bwrap"
        ? undefined
        : `${path} cannot create namespaces here (user namespaces disabled?)`,
    );
    requireProgram(this, "prlimit");
    requireProgram(this, "redis-server");
    redis = await startRedis();
    hostListener = createServer((s) => s.end("host-only\n"));
    await new Promise<void>((r) => hostListener.listen(0, "127.0.0.1", r));
    hostPort = (hostListener.address() as { port: number }).port;
    e = await startEmbedded();
    const core = await e.login("alice");
    const [ra, rb] = await Promise.all([
      core.repls.createRepl({ name: "a", template: "node" }),
      core.repls.createRepl({ name: "b", template: "node" }),
    ]);
    replA = ra.repl!.replId;
    otherRepl = rb.repl!.replId;
    const [sa, sb] = await Promise.all([
      core.repls.startRepl({ replId: ra.repl!.replId }),
      core.repls.startRepl({ replId: otherRepl }),
    ]);
    await e.runner(sb.runner!).files.writeFile({ path: "secret.txt", content: Buffer.from("TOP-SECRET-B") });
    a = e.runner(sa.runner!);
    accessA = sa.runner!;
    b = e.runner(sb.runner!);
    terminalB = (await b.terminals.createTerminal({ command: ["bash", "--norc", "--noprofile"] })).terminal!.terminalId;
    terminalId = (await a.terminals.createTerminal({ command: ["bash", "--norc", "--noprofile"] })).terminal!
      .terminalId;
  });
  after(async () => {
    await e?.close();
    await redis?.dispose();
    hostListener?.close();
  });

  const sh = (cmd: string) => runInTerminal(a, terminalId, cmd);

  it("reading another repl's workspace fails", async () => {
    const other = (await runnerRecordOf(e, otherRepl)).workspace;
    assert.ok(existsSync(join(other, "secret.txt")), "the other repl's file is where the test looks");
    const r = await sh(`cat ${join(other, "secret.txt")}`);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.output, /TOP-SECRET-B/);
    const ls = await sh(`ls ${join(other, "..")} ${join(e.dir, "local", "runners")}`);
    assert.doesNotMatch(ls.output, /secret|record\.json/);
  });

  it("the runner itself runs in the sandbox: unprivileged, and core's data, keys, blobs, home and other repls are not in its view", async () => {
    await a.files.writeFile({ path: "visible.txt", content: Buffer.from("mine") });
    const { pid } = await runnerRecordOf(e, replA);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
    const hostUid = Number(field("Uid").split(/\s+/)[0]);
    if (process.getuid?.() === 0) {
      assert.notEqual(hostUid, 0, "the runner runs as root on the host");
      // Each repl its own uid: per-user kernel limits (processes, inotify instances) are not shared.
      const other = readFileSync(`/proc/${(await runnerRecordOf(e, otherRepl)).pid}/status`, "utf8");
      assert.notEqual(Number(/^Uid:\s*(\d+)/m.exec(other)?.[1]), hostUid, "two repls share a host uid");
    }
    assert.equal(field("CapEff"), "0000000000000000");
    assert.equal(field("NoNewPrivs"), "1");
    // What the runner sees, through its own root (the test is root or the runner's user).
    const view = (p: string) => existsSync(`/proc/${pid}/root${p}`);
    assert.ok(view("/workspace/visible.txt"), "the runner's own workspace is where the test looks");
    const other = (await runnerRecordOf(e, otherRepl)).workspace;
    for (const hidden of [
      e.dir,
      join(e.dir, "state"),
      join(e.dir, "blobs"),
      join(e.dir, "local", "runners"),
      other,
      homedir(),
      "/root",
    ]) {
      assert.ok(!view(hidden), `${hidden} is visible to the runner`);
    }
    // And from a command: the repl's files are at /workspace, nothing of core's anywhere.
    assert.match((await sh("pwd; ls /")).output, /\/workspace/);
    assert.notEqual((await sh(`ls ${e.dir}`)).status, 0);
  });

  it("core never follows a link a taken-over runner puts in place of its socket", async () => {
    // The host socket a runner would love core to dial as root (Docker's, another repl's).
    const hostSocket = join(await mkdtemp(join(tmpdir(), "devex-host-sock-")), "host.sock");
    const host = createHttpServer((_, res) => res.end("HOST-ONLY")).listen(hostSocket);
    await new Promise((r) => host.once("listening", r));
    try {
      const { socketPath } = JSON.parse(
        readFileSync(join((await runnerRecordOf(e, replA)).workspace, "..", "record.json"), "utf8"),
      ) as { socketPath: string };
      // What the runner can do inside its sandbox (/run/devex is its to write): swap r.sock for a link.
      await unlink(socketPath);
      await symlink(hostSocket, socketPath);
      // Concurrent requests, so core's proxy dials new connections rather than reusing kept-alive ones.
      const bodies = await Promise.all(
        Array.from({ length: 16 }, () => fetch(`${e.core.url}/${replA}/healthz`).then((r) => r.text())),
      );
      for (const body of bodies) assert.doesNotMatch(body, /HOST-ONLY/);
      // The runner still answers through the socket core pinned when it started.
      await a.files.writeFile({ path: "pinned.txt", content: Buffer.from("still the runner") });
      const back = await a.files.readFile({ path: "pinned.txt" });
      assert.equal(Buffer.from(back.content).toString(), "still the runner");
    } finally {
      host.close();
    }
  });

  it("writing outside the workspace fails or never reaches the host", async () => {
    for (const target of ["/usr/escape", "/etc/escape", join(e.dir, "escape"), join(e.dir, "local", "escape")]) {
      await sh(`echo pwned > ${target}`);
      assert.ok(!existsSync(target), `${target} appeared on the host`);
    }
    assert.notEqual((await sh("echo pwned > /usr/escape")).status, 0);
  });

  it("connecting to the Redis port (and core's) on loopback fails", async () => {
    assert.notEqual((await sh(`exec 3<>/dev/tcp/127.0.0.1/${redis.port}`)).status, 0);
    assert.notEqual((await sh(`exec 3<>/dev/tcp/127.0.0.1/${new URL(e.core.url).port}`)).status, 0);
  });

  it("connecting to a listener on the host's loopback fails", async () => {
    const r = await sh(`exec 3<>/dev/tcp/127.0.0.1/${hostPort} && head -c 9 <&3`);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.output, /host-only/);
  });

  it("a server in one terminal is reachable from the repl's other commands and its preview, not from another repl", async () => {
    const port = 4173;
    const serve = (await a.terminals.createTerminal({ command: ["bash", "--norc", "--noprofile"] })).terminal!
      .terminalId;
    const started = await runInTerminal(
      a,
      serve,
      `node -e 'require("http").createServer((q, r) => r.end("hello from " + q.url)).listen(${port}, "127.0.0.1", () => console.log("listening"))' & sleep 0.1`,
    );
    assert.equal(started.status, 0);
    // (a) another command of the same repl (fetch needs more address space than the rlimit leaves for Wasm).
    let got = "";
    for (let i = 0; i < 50 && !/hello from \/x/.test(got); i++) {
      got = (await sh(`node -e 'require("http").get("http://127.0.0.1:${port}/x", (r) => r.pipe(process.stdout))'`))
        .output;
      if (!/hello from/.test(got)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(got, /hello from \/x/);
    // (b) the runner's preview route through core's preview origin.
    const res = await previewFetch(`${accessA.previewUrlTemplate.replace("{port}", String(port))}page?q=1`, {
      headers: { authorization: `Bearer ${accessA.token}` },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "hello from /page?q=1");
    // Another repl has its own network: the port is closed there.
    const other = await runInTerminal(b, terminalB, `exec 3<>/dev/tcp/127.0.0.1/${port}`);
    assert.notEqual(other.status, 0);
    // And the host's loopback does not see the repl's server either.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
  });

  it("runs unprivileged in its own pid namespace, with rlimits and no password hashes", async () => {
    assert.match((await sh("id -u")).output, /\b1000\b/);
    assert.notEqual((await sh(`kill -0 ${process.pid}`)).status, 0);
    assert.match((await sh("ulimit -v")).output, /\b8388608\b/);
    assert.match((await sh("ulimit -u")).output, /\b512\b/);
    assert.doesNotMatch((await sh("cat /etc/shadow")).output, /root:/);
  });

  it("the workspace itself is writable and the runner sees the result", async () => {
    assert.equal((await sh("echo inside > made-in-sandbox.txt")).status, 0);
    const read = await a.files.readFile({ path: "made-in-sandbox.txt" });
    assert.equal(Buffer.from(read.content).toString(), "inside\n");
  });
});
