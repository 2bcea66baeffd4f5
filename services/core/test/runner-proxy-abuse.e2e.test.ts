/**
 * Core's /<replId>/ proxy under abuse, against a real runner (embedded setup, local driver):
 * streams a client abandons are cancelled in the runner (its devex_rpc_in_flight, read through the
 * proxy), and a body refused early does not hang a client that writes all of it before reading,
 * whether a raw one or connect-node's HTTP/1.1 client.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Code, type ConnectError } from "@connectrpc/connect";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { type Embedded, startEmbedded } from "./embedded.js";

/** The runner's devex_rpc_in_flight for one method, read from its /metrics through core's proxy. */
async function inFlight(base: string, method: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith("devex_rpc_in_flight{") && l.includes(`rpc_method="${method}"`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

describe("core's runner proxy against a real runner", function () {
  this.timeout(60_000);
  let e: Embedded;
  let access: { url: string; token: string };
  let runner: RunnerClients;
  const replId = () => new URL(access.url).pathname.slice(1);
  before(async () => {
    e = await startEmbedded({ poolSize: 1 });
    const core = await e.login("alice");
    const { repl } = await core.repls.createRepl({ name: "proxy", template: "node" });
    access = (await core.repls.startRepl({ replId: repl!.replId })).runner!;
    runner = e.runner(access);
  });
  after(async () => {
    await e?.close();
  });

  it("20 WatchFiles streams abandoned by their clients leave 0 open in the runner", async () => {
    const aborts = Array.from({ length: 20 }, () => new AbortController());
    const pending = aborts.map((a) =>
      (async () => {
        for await (const _ of runner.files.watchFiles({ path: "", recursive: true }, { signal: a.signal }));
      })().catch(() => undefined),
    );
    await until("20 watches open in the runner", async () => (await inFlight(access.url, "WatchFiles")) === 20, 10_000);
    for (const a of aborts) a.abort();
    await Promise.all(pending);
    const ms = await until("0 watches open", async () => (await inFlight(access.url, "WatchFiles")) === 0, 5_000);
    console.log(`      all 20 cancelled in the runner ${ms} ms after their clients left`);
  });

  for (const [refusal, path] of [
    ["by the runner (too large)", () => `/${replId()}/devex.runner.v1.FileService/WriteFile`],
    ["by core (repl not running)", () => "/r000000000000/devex.runner.v1.FileService/WriteFile"],
  ] as const) {
    it(`a 50 MB body refused ${refusal}: a client writing all of it first gets the answer and an end of stream`, async () => {
      const r = await postRaw(e.core.url, path(), 50 * 1024 * 1024);
      assert.match(r.head, /^HTTP\/1\.1 [45]\d\d /);
      assert.match(r.head, /\r\nconnection: close(\r\n|$)/i);
      assert.ok(r.closedMs < 5_000, `closed after ${r.closedMs} ms`);
      console.log(`      ${r.head.split("\r\n")[0]}; closed ${r.closedMs} ms after the request started`);
    });
  }

  it("connect-node's HTTP/1.1 client: a 50 MB WriteFile is refused at once and the next call works", async () => {
    const started = Date.now();
    await assert.rejects(
      runner.files.writeFile(
        { path: "big", content: Buffer.alloc(50 * 1024 * 1024) },
        { signal: AbortSignal.timeout(10_000) },
      ),
      (err: ConnectError) => err.code === Code.ResourceExhausted,
    );
    console.log(`      ResourceExhausted after ${Date.now() - started} ms`);
    await runner.files.listFiles({ path: "" }, { signal: AbortSignal.timeout(5_000) });
  });
});

/**
 * A raw HTTP/1.1 client that writes the whole body before it looks at any answer (node:net buffers
 * what the kernel does not take). Resolves when the connection closes, or after 10 s.
 */
function postRaw(base: string, path: string, bytes: number): Promise<{ head: string; closedMs: number }> {
  const url = new URL(base);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let text = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ head: text.split("\r\n\r\n")[0], closedMs: Date.now() - started });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of stream within 10 s; got: ${text.split("\r\n")[0] || "nothing"}`));
    }, 10_000);
    socket.on("data", (d) => {
      if (text.length < 4096) text += d.toString("latin1");
    });
    socket.on("close", done);
    socket.on("error", () => undefined); // a reset after the answer is an end of stream too
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/proto\r\nContent-Length: ${bytes}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(bytes, 1));
  });
}
