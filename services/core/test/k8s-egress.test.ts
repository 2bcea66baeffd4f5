/**
 * The Kubernetes driver's egress (issue 22): ipBlocks whose `except` lies strictly inside their
 * `cidr` (the API server refuses anything else), the rules of each mode, and the per-repl
 * NetworkPolicy against the fake API server: created with the Deployment and owned by it, patched on
 * a running repl without touching its pod, gone with the Deployment.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1IPBlock, V1NetworkPolicyEgressRule } from "@kubernetes/client-node";
import { egressProxyRepl, egressProxyToken } from "../../../lib/contracts/egress-proxy.js";
import { AddressSet, ALLOW_ALL, DENY_ALL, type EgressPolicy, parseCidr } from "../../../lib/egress/policy.js";
import type { Driver } from "../src/driver/driver.js";
import { egressRules, type KubernetesEgressSettings } from "../src/driver/kubernetes/egress-policy.js";
import { canonicalCidr, ipBlock } from "../src/driver/kubernetes/ip-blocks.js";
import { objectName } from "../src/driver/kubernetes/objects.js";
import type { FakeKubeApi, KubeObject } from "./fake-kube-api.js";
import { driverFor, EGRESS_SECRET, NS, startRequest, startValidatingFake, testSettings } from "./k8s-fixtures.js";

const signal = () => AbortSignal.timeout(10_000);

/** The API server's rule, checked with lib/egress's AddressSet (not with the code under test). */
function assertStrictSubsets(block: V1IPBlock) {
  const outer = parseCidr(block.cidr)!;
  const set = new AddressSet([block.cidr]);
  for (const e of block.except ?? []) {
    const inner = parseCidr(e)!;
    assert.equal(inner.family, outer.family, `${e} in ${block.cidr}`);
    assert.ok(inner.prefix > outer.prefix && set.has(inner.address), `${e} is not strictly inside ${block.cidr}`);
  }
}

const blocks = (rules: V1NetworkPolicyEgressRule[]) =>
  rules.flatMap((r) => r.to ?? []).flatMap((p) => (p.ipBlock ? [p.ipBlock] : []));

describe("NetworkPolicy ipBlocks", () => {
  it("except keeps only the denied ranges strictly inside the cidr, outermost first, in address order", () => {
    const b = ipBlock("0.0.0.0/0", ["192.168.0.0/16", "10.0.0.0/8", "10.96.0.0/12", "169.254.0.0/16", "fc00::/7"])!;
    assert.deepEqual(b, { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16"] });
    assertStrictSubsets(b);
  });

  it("a range inside a denied one yields no block; a denied range around it is not an except", () => {
    assert.equal(ipBlock("10.1.0.0/16", ["10.0.0.0/8"]), undefined);
    assert.equal(ipBlock("10.96.0.0/12", ["10.96.0.0/12"]), undefined, "equal is not a strict subset");
    assert.deepEqual(ipBlock("10.0.0.0/8", ["10.96.0.0/12", "172.16.0.0/12"]), {
      cidr: "10.0.0.0/8",
      except: ["10.96.0.0/12"],
    });
    assert.deepEqual(ipBlock("203.0.113.0/24", ["10.0.0.0/8"]), { cidr: "203.0.113.0/24" });
  });

  it("host bits are cleared and IPv6 is written canonically", () => {
    assert.equal(canonicalCidr("10.1.2.3/8"), "10.0.0.0/8");
    assert.equal(canonicalCidr("2001:db8::1/32"), "2001:db8::/32");
    assert.equal(canonicalCidr("1:0:0:2:0:0:0:3/128"), "1:0:0:2::3/128");
    assert.equal(canonicalCidr("::ffff:10.0.0.0/104"), "::ffff:a00:0/104");
    const b = ipBlock("::/0", ["fe80::/10", "::1/128", "fc00::/7", "fd00:10:96::/112", "10.0.0.0/8"])!;
    assert.deepEqual(b, { cidr: "::/0", except: ["::1/128", "fc00::/7", "fe80::/10"] });
    assertStrictSubsets(b);
  });
});

describe("egress rules of each mode", () => {
  const egress: KubernetesEgressSettings = testSettings().egress;
  const allowlist: EgressPolicy = {
    mode: "allowlist",
    domains: ["registry.npmjs.org"],
    cidrs: ["203.0.113.0/24", "10.0.0.0/8", "10.96.0.0/12"],
  };

  it("allow_all: the internet of both families without the never, cluster and private ranges; and the proxy", () => {
    const rules = egressRules(egress, ALLOW_ALL);
    const [v4, v6] = blocks(rules);
    assert.equal(v4!.cidr, "0.0.0.0/0");
    for (const r of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"])
      assert.ok(v4!.except!.includes(r), r);
    assert.ok(v4!.except!.includes("203.0.113.2/32"), "the API server, at a public address here");
    assert.ok(!v4!.except!.includes("10.96.0.0/12"), "inside 10.0.0.0/8: redundant");
    assert.equal(v6!.cidr, "::/0");
    assert.ok(v6!.except!.includes("fe80::/10") && v6!.except!.includes("fc00::/7"));
    for (const b of blocks(rules)) assertStrictSubsets(b);
    assert.deepEqual(rules.at(-1), {
      to: [
        {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "devex" } },
          podSelector: { matchLabels: { "app.kubernetes.io/name": "devex-egress" } },
        },
      ],
      ports: [{ port: 3128, protocol: "TCP" }],
    });
  });

  it("allowlist: its CIDRs without the cluster's ranges (the API server's address, the pod and service ranges; one that is a cluster range not at all) and the proxy", () => {
    const rules = egressRules(egress, allowlist);
    assert.deepEqual(blocks(rules), [
      { cidr: "203.0.113.0/24", except: ["203.0.113.2/32"] },
      { cidr: "10.0.0.0/8", except: ["10.96.0.0/12", "10.244.0.0/16"] },
    ]);
    assert.ok(rules.at(-1)!.to![0]!.podSelector);
  });

  it("deny_all: nothing but the operator's storage ranges; no proxy configured: no proxy rule", () => {
    assert.deepEqual(egressRules(egress, DENY_ALL), []);
    assert.deepEqual(
      egressRules({ ...egress, storageCidrs: ["198.51.100.0/24"] }, { ...allowlist, mode: "deny_all" }),
      [{ to: [{ ipBlock: { cidr: "198.51.100.0/24" } }] }],
    );
    assert.ok(egressRules({ ...egress, proxy: undefined }, ALLOW_ALL).every((r) => !r.to?.[0]?.podSelector));
  });
});

describe("Kubernetes driver: a NetworkPolicy per repl", () => {
  let fake: FakeKubeApi;
  let driver: Driver;
  beforeEach(async () => {
    fake = await startValidatingFake();
    driver = driverFor(fake);
  });
  afterEach(() => fake.close());

  const policyOf = (replId: string) =>
    fake.objects("networkpolicies", NS).find((p) => p.metadata.name === objectName(replId));
  const podOf = (runnerId: string) =>
    fake.objects("pods", NS).find((p) => p.metadata.labels["devex.dev/runner-id"] === runnerId)!;
  const selects = (policy: KubeObject, pod: KubeObject) =>
    Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => pod.metadata.labels[k] === v);

  for (const egress of [
    ALLOW_ALL,
    DENY_ALL,
    { mode: "allowlist", domains: ["a.test"], cidrs: ["203.0.113.0/24"] },
  ] as EgressPolicy[])
    it(`start under ${egress.mode}: the policy's rules, selecting the repl's pod only, owned by its Deployment`, async () => {
      const req = { ...startRequest(), egress };
      const other = startRequest();
      await driver.start(req, signal());
      await driver.start(other, signal());
      const policy = policyOf(req.replId)!;
      assert.deepEqual(policy.spec.policyTypes, ["Egress"]);
      assert.deepEqual(policy.spec.egress ?? [], egressRules(testSettings().egress, egress));
      assert.ok(selects(policy, podOf(req.runnerId)));
      assert.ok(!selects(policy, podOf(other.runnerId)), "another repl's pod is not selected");
      const deployment = fake.objects("deployments", NS).find((d) => d.metadata.name === objectName(req.replId))!;
      assert.deepEqual(
        policy.metadata.ownerReferences.map((o: KubeObject) => [o.kind, o.uid]),
        [["Deployment", deployment.metadata.uid]],
      );
    });

  it("no policy in the request: allow_all", async () => {
    const req = startRequest();
    await driver.start(req, signal());
    assert.deepEqual(policyOf(req.replId)!.spec.egress, egressRules(testSettings().egress, ALLOW_ALL));
  });

  it("the runner's proxy settings: the credential by reference to the repl's Secret, which holds the HMAC", async () => {
    const req = startRequest();
    await driver.start(req, signal());
    const pod = podOf(req.runnerId);
    const env = Object.fromEntries(pod.spec.containers[0].env.map((e: KubeObject) => [e.name, e.value ?? e.valueFrom]));
    const proxy = `http://${req.replId}:$(DEVEX_EGRESS_TOKEN)@devex-egress.devex.svc:3128`;
    for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) assert.equal(env[name], proxy);
    assert.match(env.NO_PROXY, /(^|,)\.svc(,|$)/);
    assert.match(env.NO_PROXY, /devex-core\.devex\.svc/);
    assert.deepEqual(env.DEVEX_EGRESS_TOKEN, { secretKeyRef: { name: objectName(req.replId), key: "egress-token" } });
    const secret = fake.objects("secrets", NS).find((s) => s.metadata.name === objectName(req.replId))!;
    const token = Buffer.from(secret.data["egress-token"], "base64").toString();
    assert.equal(token, egressProxyToken(EGRESS_SECRET, req.replId));
    const header = `Basic ${Buffer.from(`${req.replId}:${token}`).toString("base64")}`;
    assert.equal(egressProxyRepl(EGRESS_SECRET, header), req.replId);
    assert.ok(!JSON.stringify(fake.objects("deployments", NS)).includes(token), "the token is not in the spec");
  });

  it("the runner's HTTP_PROXY as the kubelet builds it carries the credential the proxy accepts", async () => {
    const seen: Record<string, string>[] = [];
    const kubelet = await startValidatingFake({
      runtime: {
        run: async () => ({ exitCode: 0 }),
        start: async (_pod, container, env) => {
          if (container.name === "runner") seen.push(env);
        },
        stopPod: async () => {},
      },
    });
    try {
      const req = startRequest();
      await driverFor(kubelet).start(req, signal());
      const url = new URL(seen[0]!.HTTP_PROXY!);
      assert.equal(`${url.protocol}//${url.host}`, "http://devex-egress.devex.svc:3128");
      const header = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
      assert.equal(egressProxyRepl(EGRESS_SECRET, header), req.replId);
      assert.equal(seen[0]!.https_proxy, seen[0]!.HTTP_PROXY);
    } finally {
      await kubelet.close();
    }
  });

  it("setEgress on a running repl patches its NetworkPolicy: every mode in turn, the pod untouched", async () => {
    const req = startRequest();
    await driver.start(req, signal());
    const pod = podOf(req.runnerId);
    const allowlist: EgressPolicy = { mode: "allowlist", domains: ["x.test"], cidrs: ["198.51.100.7/32"] };
    for (const egress of [DENY_ALL, allowlist, ALLOW_ALL, DENY_ALL]) {
      await driver.setEgress({ replId: req.replId, runnerId: req.runnerId, egress }, signal());
      assert.deepEqual(
        policyOf(req.replId)!.spec.egress ?? [],
        egressRules(testSettings().egress, egress),
        egress.mode,
      );
    }
    const after = podOf(req.runnerId);
    assert.equal(after.metadata.uid, pod.metadata.uid);
    assert.equal(after.metadata.deletionTimestamp, undefined);
    const patches = fake.requests.filter((r) => r.resource === "networkpolicies" && r.verb === "patch");
    assert.equal(patches.length, 4);
    assert.ok(patches.every((p) => p.contentType === "application/json-patch+json" && p.code === 200));
  });

  it("stop deletes the NetworkPolicy with the Deployment; setEgress on a runner that is gone succeeds", async () => {
    const req = startRequest();
    await driver.start(req, signal());
    await driver.stop({ ...req, reason: "t" }, signal());
    const deadline = Date.now() + 5000;
    while (policyOf(req.replId) && Date.now() < deadline) await sleep(5);
    assert.equal(policyOf(req.replId), undefined);
    await driver.setEgress({ replId: req.replId, runnerId: req.runnerId, egress: DENY_ALL }, signal());
    assert.equal(policyOf(req.replId), undefined, "nothing is created for a runner that is gone");
  });

  it("a running repl without a NetworkPolicy (started before them) gets one owned by its Deployment", async () => {
    const req = startRequest();
    await driver.start(req, signal());
    const name = objectName(req.replId);
    const res = await fetch(`${fake.url}/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/${name}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${fake.token}` },
    });
    assert.equal(res.status, 200);
    assert.equal(policyOf(req.replId), undefined);
    await driver.setEgress({ replId: req.replId, runnerId: req.runnerId, egress: DENY_ALL }, signal());
    const policy = policyOf(req.replId)!;
    assert.deepEqual(policy.spec.egress ?? [], []);
    assert.ok(selects(policy, podOf(req.runnerId)));
    assert.equal(policy.metadata.ownerReferences[0].kind, "Deployment");
  });
});
