/**
 * Issue 22's "Must show" for the local driver, end to end: core runs as `npm start` runs it, inside
 * the test internet's H namespace (lib/testing/test-internet.ts), so its repls' egress path (pasta,
 * nft, core's resolver and HTTP/TLS gate) can reach only the test's own internet, even when broken.
 *
 *  - allow_all reaches W by name over HTTP and TLS; deny_all resolves nothing and connects nowhere;
 *    an allowlist reaches its names and not others, even one sharing an allowed name's address (the
 *    HTTP Host and the TLS SNI are checked); a policy change reaches a running repl within a second.
 *  - In every mode: H's loopback redis, core's ports and another repl's dev server stay unreachable
 *    (TCP connect and HTTP), and so do the metadata and private addresses W carries.
 *  - npm install from W's registry under allow_all and under an allowlist naming it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { EgressMode, EgressPolicySchema } from "../../../gen/devex/core/v1/repl_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import {
  hostAddress,
  hostRedisPort,
  metadataAddress,
  privateAddress,
  registryPackage,
  requireTestInternet,
  startTestInternet,
  type TestInternet,
  testNames,
} from "../../../lib/testing/test-internet.js";
import { type CoreInH, corePortInH, execInRepl, startCoreInH } from "../../../lib/testing/test-internet-core.js";

const policy = (mode: EgressMode, allowDomains: string[] = []) =>
  create(EgressPolicySchema, { mode, allowDomains, allowCidrs: [] });

interface Repl {
  id: string;
  runner: RunnerClients;
}

/** `curl` in the repl: the body, or "curl exit <code>" when it failed (6: no such name; 7, 28: no connection). */
async function curl(repl: Repl, args: string): Promise<string> {
  const r = await execInRepl(repl.runner, `curl -sS --max-time 5 --cacert /tmp/ca.pem ${args}; echo "curl exit $?"`);
  const m = /curl exit (\d+)\n$/.exec(r.stdout);
  assert.ok(m, `no exit status: ${r.stdout} ${r.stderr}`);
  return m[1] === "0" ? r.stdout.slice(0, m.index) : `curl exit ${m[1]}`;
}

/**
 * W's servers answer "hello <Host> at <address>"; anything else (a failed connection, a refused
 * name, a refusal by core's gate) means the request did not reach them.
 */
const servedByW = /^hello /;

/** Whether a TCP connection to host:port opens from the repl (within 5 s). */
async function tcpOpens(repl: Repl, host: string, port: number): Promise<boolean> {
  const r = await execInRepl(repl.runner, `timeout 5 bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null; echo $?`);
  return r.stdout.trim() === "0";
}

/** An npm install of the test registry's package in a fresh folder, and what the package exports. */
async function npmInstall(repl: Repl): Promise<string> {
  const { name, host } = registryPackage;
  const dir = `/tmp/npm-${Math.random().toString(36).slice(2)}`;
  const r = await execInRepl(
    repl.runner,
    `mkdir -p ${dir} && cd ${dir} && echo '{}' > package.json && ` +
      `npm install --registry http://${host}/ --no-audit --no-fund --fetch-retries 0 --fetch-timeout 10000 ${name} >/dev/null && ` +
      `node -p 'require("${name}")'`,
    120,
  );
  return r.exitCode === 0 ? r.stdout.trim() : `npm failed (${r.exitCode}): ${r.stderr.slice(-500)}`;
}

describe("egress of local repls, end to end in the test's own internet", function () {
  this.timeout(300_000);
  let net: TestInternet;
  let c: CoreInH;
  const repls: Record<"open" | "closed" | "listed", Repl> = {} as never;

  async function startRepl(name: string, egress: ReturnType<typeof policy>): Promise<Repl> {
    const created = await c.core.repls.createRepl({ name, template: "node", egress });
    const id = created.repl!.replId;
    const started = await c.core.repls.startRepl({ replId: id });
    const repl = { id, runner: c.runner(started.runner!) };
    const ca = await execInRepl(repl.runner, `cat > /tmp/ca.pem <<'EOF'\n${net.certPem}EOF`);
    assert.equal(ca.exitCode, 0, ca.stderr);
    return repl;
  }

  before(async function () {
    requireTestInternet(this);
    requireProgram(this, "bwrap");
    net = await startTestInternet();
    await net.startRedisInH();
    c = await startCoreInH(net);
    [repls.open, repls.closed, repls.listed] = await Promise.all([
      startRepl("open", policy(EgressMode.ALLOW_ALL)),
      startRepl("closed", policy(EgressMode.DENY_ALL)),
      startRepl("listed", policy(EgressMode.ALLOWLIST, ["allowed.test", "registry.test"])),
    ]);
  });
  after(async function () {
    if (this.currentTest?.state === "failed" && c) console.log(c.log().slice(-4000));
    await c?.close();
    await net?.close();
  });

  it("GetRepl shows each repl's effective policy", async () => {
    const listed = (await c.core.repls.getRepl({ replId: repls.listed.id })).repl!;
    assert.equal(listed.egress?.mode, EgressMode.ALLOWLIST);
    assert.deepEqual(listed.egress?.allowDomains, ["allowed.test", "registry.test"]);
    assert.ok(listed.egressDeniedCidrs.includes("169.254.0.0/16"), listed.egressDeniedCidrs.join());
    assert.equal(listed.egressNotEnforced, "", "this core enforces policies");
  });

  it("allow_all fetches from the test internet by name, over HTTP and TLS", async () => {
    assert.equal(
      await curl(repls.open, "http://allowed.test/"),
      `hello allowed.test at ${testNames["allowed.test"]}\n`,
    );
    assert.equal(await curl(repls.open, "https://tls.test/"), `hello tls.test at ${testNames["tls.test"]}\n`);
    assert.equal(await curl(repls.open, "http://other.test/"), `hello other.test at ${testNames["other.test"]}\n`);
    // By address and by raw TCP too: what deny_all and the allowlist must refuse is reachable here.
    const other = testNames["other.test"];
    assert.equal(await curl(repls.open, `http://${other}/`), `hello ${other} at ${other}\n`);
    assert.equal(await tcpOpens(repls.open, other, 7000), true);
  });

  it("names resolve reliably: 300 lookups in a row each answer within a second, in every mode that allows them", async () => {
    for (const [mode, repl] of [
      ["allow_all", repls.open],
      ["allowlist", repls.listed],
    ] as const) {
      const r = await execInRepl(
        repl.runner,
        "for i in $(seq 1 300); do s=$(date +%s%3N); getent ahosts allowed.test >/dev/null; rc=$?; " +
          'd=$(( $(date +%s%3N) - s )); if [ $rc -ne 0 ] || [ $d -gt 1000 ]; then echo "lookup $i: exit $rc after $d ms"; fi; done',
        900,
      );
      assert.equal(r.stdout, "", `${mode}: slow or failed lookups of allowed.test`);
    }
  });

  it("deny_all resolves no name and connects to no address", async () => {
    assert.equal(await curl(repls.closed, "http://allowed.test/"), "curl exit 6");
    assert.doesNotMatch(await curl(repls.closed, `http://${testNames["allowed.test"]}/`), servedByW);
    assert.equal(await tcpOpens(repls.closed, testNames["allowed.test"], 7000), false);
  });

  it("an allowlist reaches its names and not others, by name, by address and by Host or SNI", async () => {
    const { listed } = repls;
    const shared = testNames["shared.test"];
    assert.equal(await curl(listed, "http://allowed.test/"), `hello allowed.test at ${shared}\n`);
    assert.equal(await curl(listed, "https://allowed.test/"), `hello allowed.test at ${shared}\n`);
    const raw = await execInRepl(listed.runner, "timeout 5 bash -c 'exec 3<>/dev/tcp/allowed.test/7000; cat <&3'");
    assert.equal(raw.stdout, `tcp ${shared}\n`, "raw TCP to an allowed name's address");
    // other.test: not resolved, and its address closed.
    assert.match(await curl(listed, "http://other.test/"), /^curl exit 6$/);
    assert.doesNotMatch(await curl(listed, `http://${testNames["other.test"]}/`), servedByW);
    assert.equal(await tcpOpens(listed, testNames["other.test"], 7000), false);
    // shared.test: allowed.test's address, an unlisted name (the client resolves it itself).
    assert.doesNotMatch(await curl(listed, `--resolve shared.test:80:${shared} http://shared.test/`), servedByW);
    assert.doesNotMatch(await curl(listed, `--resolve shared.test:443:${shared} https://shared.test/`), servedByW);
  });

  it("a policy change reaches a running repl within a second", async () => {
    for (const [egress, before, after] of [
      [policy(EgressMode.ALLOW_ALL), false, true],
      [policy(EgressMode.DENY_ALL), true, false],
    ] as const) {
      const elapsed = await timeUntil(repls.closed, after, async () => {
        await c.core.repls.setEgressPolicy({ replId: repls.closed.id, egress });
      });
      assert.ok(elapsed <= 1000, `${EgressMode[egress.mode]}: took ${elapsed} ms (from ${before} to ${after})`);
    }
  });

  it("in every mode, H's loopback redis and core's ports are closed to repls (TCP and HTTP)", async () => {
    // They are up: seen from H itself.
    assert.equal((await net.inH("redis-cli", ["-p", String(hostRedisPort), "ping"])).stdout.trim(), "PONG");
    const coreUp = await net.inH("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://127.0.0.1:${corePortInH}/`,
    ]);
    assert.match(coreUp.stdout, /^\d{3}$/, coreUp.stderr);
    for (const [mode, repl] of Object.entries(repls)) {
      const hosts = new Set(["127.0.0.1", hostAddress, await gatewayOf(repl)].filter(Boolean));
      const targets = [...hosts].flatMap((h) => [hostRedisPort, corePortInH, corePortInH + 1].map((p) => `${h}:${p}`));
      assert.deepEqual(await reachable(repl, targets), [], mode);
    }
  });

  it("in every mode, another repl's dev server is unreachable", async () => {
    const entries = Object.entries(repls);
    const servers = await Promise.all(entries.map(([, repl], i) => startDevServer(repl, 3001 + i)));
    for (const [i, [mode, repl]] of entries.entries()) {
      const others = servers.filter((_, j) => j !== i);
      const hosts = new Set(["127.0.0.1", hostAddress, await gatewayOf(repl), ...others.flatMap((o) => o.names)]);
      const targets = [...hosts].filter(Boolean).flatMap((h) => others.map((o) => `${h}:${o.port}`));
      assert.deepEqual(await reachable(repl, targets), [], `from ${mode}`);
    }
  });

  it("under allow_all, the metadata and private addresses W carries stay closed", async () => {
    for (const address of [metadataAddress, privateAddress]) {
      assert.doesNotMatch(await curl(repls.open, `http://${address}/`), servedByW, address);
      assert.equal(await tcpOpens(repls.open, address, 7000), false, address);
    }
  });

  it("npm install from the test registry works under allow_all and under an allowlist naming it", async () => {
    const exported = "served by the test registry";
    assert.equal(await npmInstall(repls.open), exported);
    assert.equal(await npmInstall(repls.listed), exported);
  });

  it("a core that crashed re-adopts its repls with their network: the old pastas gone (its pool's too), the policy still enforced and changeable", async () => {
    const pastaOf = async (pids: number[]) => {
      const out: number[] = [];
      for (const pid of pids) {
        const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
        if (comm.startsWith("pasta") || comm.startsWith("passt")) out.push(pid);
      }
      return out;
    };
    // One per running repl, and one per pooled runner (connected while it waits: pool size 2).
    const pastas = async (expected: number) => {
      let found: number[] = [];
      for (let i = 0; i < 100 && found.length !== expected; i++) {
        if (i) await new Promise((r) => setTimeout(r, 100));
        found = await pastaOf(await c.descendants());
      }
      assert.equal(found.length, expected, "one pasta per running repl and per pooled runner");
      return found;
    };
    const oldPastas = await pastas(3 + 2);
    const { dataDir } = c;
    await c.crash();
    c = await startCoreInH(net, { dataDir });
    for (const pid of oldPastas)
      assert.equal(existsSync(`/proc/${pid}`), false, `the old core's pasta ${pid} was killed`);
    await pastas(3 + 2);
    // The running repl, through a fresh token from the new core: same runner, its network reconnected.
    const started = await c.core.repls.startRepl({ replId: repls.listed.id });
    const listed = { id: repls.listed.id, runner: c.runner(started.runner!) };
    assert.equal(await curl(listed, "http://allowed.test/"), `hello allowed.test at ${testNames["shared.test"]}\n`);
    assert.equal(await curl(listed, "http://other.test/"), "curl exit 6");
    await c.core.repls.setEgressPolicy({ replId: listed.id, egress: policy(EgressMode.DENY_ALL) });
    assert.equal(await curl(listed, "http://allowed.test/"), "curl exit 6");
  });
});

/**
 * Of `targets` ("host:port"), those a TCP connection or an HTTP request from the repl reaches, all
 * probed at once (a dropped connection costs its 3 s timeout once, not per target).
 */
async function reachable(repl: Repl, targets: string[]): Promise<string[]> {
  const script =
    `probe() { h=\${1%:*}; p=\${1##*:}; timeout 3 bash -c "exec 3<>/dev/tcp/$h/$p" 2>/dev/null; tcp=$?; ` +
    `curl -s -o /dev/null --max-time 3 "http://$1/"; echo "$1 $tcp $?"; }; ` +
    `for t in ${targets.join(" ")}; do probe $t & done; wait`;
  const r = await execInRepl(repl.runner, script);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, targets.length, `probes lost: ${r.stdout} ${r.stderr}`);
  return lines.filter((l) => !/ [1-9]\d* [1-9]\d*$/.test(l)).sort();
}

/** A dev server in the repl on 0.0.0.0:port, up (seen from the repl itself), and the names of the repl. */
async function startDevServer(repl: Repl, port: number): Promise<{ port: number; names: string[] }> {
  const js = `require("http").createServer((q, s) => s.end("dev-server-up\\n")).listen(${port}, "0.0.0.0")`;
  await repl.runner.processes.startProcess({ command: { shell: `exec node -e '${js}'` }, name: "dev" });
  const up = await execInRepl(
    repl.runner,
    `for i in $(seq 1 100); do curl -s http://127.0.0.1:${port}/ && break; sleep 0.1; done; hostname; hostname -I || true`,
  );
  const [greeting, ...names] = up.stdout.trim().split(/\s+/);
  assert.equal(greeting, "dev-server-up", `the dev server did not start: ${up.stdout} ${up.stderr}`);
  return { port, names };
}

/** The repl's default gateway as it sees it (/proc/net/route; the repl has no `ip`), or "". */
async function gatewayOf(repl: Repl): Promise<string> {
  const r = await execInRepl(repl.runner, "awk '$2 == \"00000000\" { print $3 }' /proc/net/route | head -1");
  const hex = r.stdout.trim();
  if (!/^[0-9A-F]{8}$/i.test(hex)) return "";
  return [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join(".");
}

/**
 * Runs `change` while the repl polls allowed.test every 50 ms; returns the ms from the end of
 * `change` to the first poll whose outcome is `reachable` (the repl's clock is the test's: one machine).
 */
async function timeUntil(repl: Repl, reachable: boolean, change: () => Promise<void>): Promise<number> {
  const done = reachable ? "-eq" : "-ne";
  const loop =
    `echo started; for i in $(seq 1 200); do ` +
    `curl -s -o /dev/null --max-time 0.5 http://allowed.test/; ` +
    `if [ $? ${done} 0 ]; then date +%s%3N; exit 0; fi; sleep 0.05; done; exit 1`;
  const events = repl.runner.processes.exec({ command: { shell: loop }, timeout: { seconds: 60n, nanos: 0 } });
  let out = "";
  let changedAt = 0;
  for await (const e of events) {
    if (e.event.case !== "stdout") continue;
    out += Buffer.from(e.event.value).toString();
    if (!changedAt && out.includes("started\n")) {
      await change();
      changedAt = Date.now();
    }
  }
  const reached = Number(/started\n(\d+)\n/.exec(out)?.[1]);
  assert.ok(reached, `the repl never saw the change: ${out}`);
  return Math.max(0, reached - changedAt);
}
