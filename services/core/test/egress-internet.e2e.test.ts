/**
 * The egress tests' own internet (lib/testing/test-internet.ts) does what they rely on: from H its
 * servers answer by address and, through its resolver, by name; and the test's own namespace gains
 * no link or route, so what runs in H can reach nothing but W.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  hostAddress,
  hostRedisPort,
  internetAddress,
  metadataAddress,
  privateAddress,
  registryPackage,
  requireTestInternet,
  run,
  startTestInternet,
  type TestInternet,
  testNames,
} from "../../../lib/testing/test-internet.js";

/** The links and routes of the namespace this test runs in. */
async function hostView(): Promise<string> {
  const links = await run("ip", ["-o", "link", "show"]);
  const routes = await run("ip", ["route", "show", "table", "all"]);
  return links.stdout.replace(/\s+link\/.*$/gm, "") + routes.stdout;
}

describe("the egress tests' own internet", function () {
  this.timeout(120_000);
  let net: TestInternet;
  let before_: string;

  before(async function () {
    requireTestInternet(this);
    before_ = await hostView();
    net = await startTestInternet();
  });
  after(async () => net?.close());

  const curlInH = (args: string[]) => net.inH("curl", ["-sS", "--max-time", "10", ...args]);

  it("serves HTTP by address and reports the Host and address a client reached", async () => {
    const r = await curlInH([`http://${testNames["other.test"]}/`]);
    assert.equal(r.stdout, `hello ${testNames["other.test"]} at ${testNames["other.test"]}\n`, r.stderr);
    const named = await curlInH([
      ...["--resolve", `shared.test:80:${testNames["shared.test"]}`],
      "http://shared.test/",
    ]);
    assert.equal(named.stdout, `hello shared.test at ${testNames["shared.test"]}\n`, named.stderr);
  });

  it("serves TLS with a certificate for the test names", async () => {
    const ca = join(net.dir, "ca-copy.pem");
    await writeFile(ca, net.certPem);
    const r = await curlInH([
      "--cacert",
      ca,
      "--resolve",
      `tls.test:443:${testNames["tls.test"]}`,
      "https://tls.test/",
    ]);
    assert.equal(r.stdout, `hello tls.test at ${testNames["tls.test"]}\n`, r.stderr);
  });

  it("answers names through its resolver: A records, NXDOMAIN for the rest", async () => {
    const script = `
      const { Resolver } = require("node:dns").promises;
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([${JSON.stringify(internetAddress)}]);
      const names = ${JSON.stringify([...Object.keys(testNames), "missing.test"])};
      Promise.all(names.map((n) => r.resolve4(n).then((a) => a.join(","), (e) => e.code)))
        .then((a) => console.log(JSON.stringify(Object.fromEntries(names.map((n, i) => [n, a[i]])))));`;
    const r = await net.inH(process.execPath, ["-e", script]);
    assert.deepEqual(JSON.parse(r.stdout), { ...testNames, "missing.test": "ENOTFOUND" }, r.stderr);
  });

  it("serves raw TCP and the metadata and private addresses it carries itself", async () => {
    const tcp = await net.inH("bash", ["-c", `exec 3<>/dev/tcp/${testNames["other.test"]}/7000; cat <&3`]);
    assert.equal(tcp.stdout, `tcp ${testNames["other.test"]}\n`, tcp.stderr);
    for (const address of [metadataAddress, privateAddress]) {
      const r = await curlInH([`http://${address}/`]);
      assert.equal(r.stdout, `hello ${address} at ${address}\n`, r.stderr);
    }
  });

  it("serves one package as an npm registry at registry.test", async () => {
    const { name, version, host } = registryPackage;
    const resolve = ["--resolve", `${host}:80:${testNames["registry.test"]}`];
    const doc = JSON.parse((await curlInH([...resolve, `http://${host}/${name}`])).stdout);
    const dist = doc.versions[version].dist;
    assert.equal(dist.tarball, `http://${host}/${name}/-/${name}-${version}.tgz`);
    const tgz = join(net.dir, "fetched.tgz");
    assert.equal((await curlInH([...resolve, "-o", tgz, dist.tarball])).code, 0);
    assert.equal(
      createHash("sha1")
        .update(await readFile(tgz))
        .digest("hex"),
      dist.shasum,
    );
    assert.equal((await curlInH([...resolve, `http://${host}/left-pad`])).stdout, '{"error":"not found"}');
  });

  it("runs a redis-server on H's loopback", async () => {
    await net.startRedisInH();
    const r = await net.inH("redis-cli", ["-p", String(hostRedisPort), "ping"]);
    assert.equal(r.stdout.trim(), "PONG");
  });

  it("H's traffic leaves from its link address", async () => {
    const r = await curlInH([`http://${testNames["allowed.test"]}/`, "-w", "%{local_ip}"]);
    assert.ok(r.stdout.endsWith(hostAddress), r.stdout);
  });

  it("adds no link or route to the test's own namespace, and close removes both namespaces", async () => {
    assert.equal(await hostView(), before_);
    const holders = [net.hostPid, net.internetPid];
    await net.close();
    for (const pid of holders) assert.equal(existsSync(`/proc/${pid}`), false, `pid ${pid} still alive`);
    assert.equal(existsSync(net.dir), false);
  });
});
