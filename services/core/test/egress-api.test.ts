/**
 * The per-repl egress policy through core's API (issue 22): core built by start-core.ts from its
 * config (DEVEX_EGRESS_DEFAULT, DEVEX_EGRESS_DENY_CIDRS, templates with an "egress" field), with the
 * embedded store, real sockets and the in-process test driver standing in for runners. What a
 * running repl does with the policy is the drivers' tests' business; here: that core resolves,
 * stores, shows and hands it over, and refuses what it must.
 */
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { EgressMode, type Repl, ReplStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { AddressSet } from "../../../lib/egress/policy.js";
import { createLogger } from "../../../lib/kit/log.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { coreConfigSchema } from "../src/config.js";
import { type StartedCore, startCore } from "../src/start-core.js";
import { clientsFor, templatesDir } from "./harness.js";
import { createTestDriver, type TestDriver } from "./test-driver.js";

type ReplClient = ReturnType<typeof clientsFor>["repl"];

const code = (c: Code, match?: RegExp) => (e: unknown) => {
  const err = ConnectError.from(e);
  assert.equal(Code[err.code], Code[c], err.message);
  if (match) assert.match(err.message, match);
  return true;
};

/** A Repl's policy in a form deepEqual can compare. */
const policyOf = (r: Repl | undefined) => ({
  mode: EgressMode[r?.egress?.mode ?? EgressMode.UNSPECIFIED],
  domains: r?.egress?.allowDomains ?? [],
  cidrs: r?.egress?.allowCidrs ?? [],
});
const allowAll = { mode: "ALLOW_ALL", domains: [], cidrs: [] };
const denyAll = { mode: "DENY_ALL", domains: [], cidrs: [] };
const npmOnly = { mode: "ALLOWLIST", domains: ["registry.npmjs.org", "*.npmjs.com"], cidrs: ["10.0.0.0/8"] };

/** The repo's node template, plus "npm-only" whose template.json carries an allowlist (written untidily on purpose). */
async function makeTemplates(dir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const root = join(dir, "templates");
  await cp(join(templatesDir, "node"), join(root, "node"), { recursive: true });
  const manifests = {
    "npm-only": {
      title: "npm only",
      egress: {
        mode: "allowlist",
        domains: ["Registry.NPMJS.org.", "*.npmjs.com"],
        cidrs: ["10.0.0.0/8", "10.0.0.0/8"],
      },
    },
    ...extra,
  };
  for (const [name, manifest] of Object.entries(manifests)) {
    await mkdir(join(root, name), { recursive: true });
    await writeFile(join(root, name, "template.json"), JSON.stringify(manifest));
    await writeFile(join(root, name, "README.md"), `# ${name}\n`);
  }
  return root;
}

interface EgressCore {
  started: StartedCore;
  driver: TestDriver;
  /** A client signed in as `user` (an API token, as `core create-token` makes). */
  as(user: string): Promise<ReplClient>;
  close(): Promise<void>;
}

/** Core as npm start builds it from `env`, with the test driver instead of the local one. */
async function startEgressCore(dir: string, env: Record<string, string>): Promise<EgressCore> {
  const config = coreConfigSchema.parse({
    DEVEX_DATA_DIR: join(dir, "data"),
    DEVEX_CORE_PORT: "0",
    DEVEX_COOKIE_SECRET: "test-cookie-secret",
    DEVEX_REPL_QUOTA: "100",
    ...env,
  });
  const driver = createTestDriver();
  const started = await startCore(config, {
    log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    reconcileIntervalMs: 0,
    openDriver: async () => ({ driver }),
  });
  return {
    started,
    driver,
    as: async (user) => {
      const { secret } = await issueApiToken(started.state, user, "test");
      return clientsFor(started.core.url, { bearer: secret }).repl;
    },
    close: () => started.close(AbortSignal.timeout(10_000)),
  };
}

describe("egress policy through core's API", function () {
  this.timeout(60_000);
  let dir: string;
  let templates: string;
  let t: EgressCore;
  let user = 0;
  let c: ReplClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-egress-api-"));
    templates = await makeTemplates(dir);
    t = await startEgressCore(dir, {
      DEVEX_TEMPLATES_DIR: templates,
      DEVEX_EGRESS_DENY_CIDRS: "203.0.113.0/24, 2001:db8:dead::/48",
    });
  });
  after(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    c = await t.as(`user${++user}`);
    t.driver.failSetEgress = false;
    t.driver.startDelayMs = 0;
  });

  const startedRunner = (replId: string) => {
    const runnerId = [...t.driver.runners].find(([, r]) => r.replId === replId)?.[0];
    assert.ok(runnerId, `no runner for ${replId}`);
    return runnerId;
  };
  const changesFor = (replId: string) => t.driver.egressChanges.filter((e) => e.replId === replId);

  it("ListTemplates shows a template's policy, normalised when loaded, and none for a template without one", async () => {
    const { templates: list } = await c.listTemplates({});
    const byName = new Map(list.map((x) => [x.name, x]));
    assert.equal(byName.get("node")?.egress, undefined);
    const npm = byName.get("npm-only")?.egress;
    assert.deepEqual({ mode: EgressMode[npm?.mode ?? 0], domains: npm?.allowDomains, cidrs: npm?.allowCidrs }, npmOnly);
  });

  it("a repl created without a policy gets the operator's default, with the never-opened ranges shown", async () => {
    const { repl } = await c.createRepl({ name: "plain", template: "node" });
    assert.deepEqual(policyOf(repl), allowAll);
    const got = (await c.getRepl({ replId: repl!.replId })).repl;
    assert.deepEqual(policyOf(got), allowAll);
    const denied = got!.egressDeniedCidrs;
    // The built-in ranges, the operator's DEVEX_EGRESS_DENY_CIDRS and every address of this host.
    for (const cidr of ["127.0.0.0/8", "169.254.0.0/16", "::/96", "fe80::/10", "203.0.113.0/24", "2001:db8:dead::/48"])
      assert.ok(denied.includes(cidr), `${cidr} not in ${denied.join(", ")}`);
    const hostAddresses = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
    assert.ok(hostAddresses.length > 0);
    // Listed as given or inside a wider never-opened range (127.0.0.1 within 127.0.0.0/8).
    const deniedSet = new AddressSet(denied);
    for (const a of hostAddresses) {
      const address = a.address.replace(/%.*$/, "");
      assert.ok(deniedSet.has(address), `the host's address ${address} is not denied`);
    }
    assert.ok(!denied.includes("10.0.0.0/8"), "private ranges are closed by default, not never-opened");
    // What is stored is the resolved policy, not a reference to the default.
    assert.deepEqual((await t.started.state.getRepl(repl!.replId))?.egress, {
      mode: "allow_all",
      domains: [],
      cidrs: [],
    });
  });

  it("a repl created with a policy keeps it (normalised), in every place a repl is shown", async () => {
    const egress = {
      mode: EgressMode.ALLOWLIST,
      allowDomains: ["example.com", "*.example.org", "example.com"],
      allowCidrs: ["198.51.100.7", "2001:DB8::/32"],
    };
    const { repl } = await c.createRepl({ name: "mine", template: "node", egress });
    const expected = {
      mode: "ALLOWLIST",
      domains: ["example.com", "*.example.org"],
      cidrs: ["198.51.100.7/32", "2001:db8::/32"],
    };
    assert.deepEqual(policyOf(repl), expected);
    assert.deepEqual(policyOf((await c.getRepl({ replId: repl!.replId })).repl), expected);
    const listed = (await c.listRepls({})).repls.find((r) => r.replId === repl!.replId);
    assert.deepEqual(policyOf(listed), expected);
    assert.ok(listed!.egressDeniedCidrs.includes("169.254.0.0/16"));
    const watch = new AbortController();
    for await (const u of c.watchRepl({ replId: repl!.replId }, { signal: watch.signal })) {
      assert.deepEqual(policyOf(u.repl), expected);
      assert.ok(u.repl!.egressDeniedCidrs.includes("203.0.113.0/24"));
      break;
    }
    watch.abort();
  });

  it("a repl created from a template with a policy gets the template's, unless the request names one", async () => {
    const { repl } = await c.createRepl({ name: "npm", template: "npm-only" });
    assert.deepEqual(policyOf(repl), npmOnly);
    const { repl: own } = await c.createRepl({
      name: "own",
      template: "npm-only",
      egress: { mode: EgressMode.DENY_ALL },
    });
    assert.deepEqual(policyOf(own), denyAll);
    // A policy whose mode is unset is no policy: the template's applies.
    const { repl: unset } = await c.createRepl({
      name: "unset",
      template: "npm-only",
      egress: { allowDomains: ["x.test"] },
    });
    assert.deepEqual(policyOf(unset), npmOnly);
  });

  it("StartRepl hands the driver the repl's policy", async () => {
    const { repl } = await c.createRepl({ name: "s", template: "npm-only" });
    await c.startRepl({ replId: repl!.replId });
    const start = t.driver.starts.find((s) => s.replId === repl!.replId);
    assert.deepEqual(start?.egress, {
      mode: "allowlist",
      domains: ["registry.npmjs.org", "*.npmjs.com"],
      cidrs: ["10.0.0.0/8"],
    });
  });

  it("SetEgressPolicy on a stopped repl stores it without telling the driver; the next start uses it", async () => {
    const { repl } = await c.createRepl({ name: "stopped", template: "node" });
    const replId = repl!.replId;
    const res = await c.setEgressPolicy({ replId, egress: { mode: EgressMode.ALLOWLIST, allowDomains: ["pypi.org"] } });
    const expected = { mode: "ALLOWLIST", domains: ["pypi.org"], cidrs: [] };
    assert.equal(res.repl?.status, ReplStatus.STOPPED);
    assert.deepEqual(policyOf(res.repl), expected);
    assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), expected);
    assert.equal(changesFor(replId).length, 0);
    await c.startRepl({ replId });
    assert.deepEqual(t.driver.starts.find((s) => s.replId === replId)?.egress, {
      mode: "allowlist",
      domains: ["pypi.org"],
      cidrs: [],
    });
  });

  it("SetEgressPolicy on a running repl tells its runner, and a reset brings back the template's default", async () => {
    const { repl } = await c.createRepl({ name: "running", template: "npm-only" });
    const replId = repl!.replId;
    await c.startRepl({ replId });
    const runnerId = startedRunner(replId);
    const res = await c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } });
    assert.equal(res.repl?.status, ReplStatus.RUNNING);
    assert.deepEqual(policyOf(res.repl), denyAll);
    assert.deepEqual(changesFor(replId), [{ replId, runnerId, egress: { mode: "deny_all", domains: [], cidrs: [] } }]);

    const reset = await c.setEgressPolicy({ replId, egress: {} });
    assert.deepEqual(policyOf(reset.repl), npmOnly);
    assert.deepEqual(changesFor(replId)[1], {
      replId,
      runnerId,
      egress: { mode: "allowlist", domains: ["registry.npmjs.org", "*.npmjs.com"], cidrs: ["10.0.0.0/8"] },
    });
    // After a stop the runner is gone: a change is stored and not sent anywhere.
    await c.stopRepl({ replId });
    await c.setEgressPolicy({ replId, egress: { mode: EgressMode.ALLOW_ALL } });
    assert.equal(changesFor(replId).length, 2);
    assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), allowAll);
  });

  it("a change made while a start is under way waits for it and reaches the new runner", async () => {
    const { repl } = await c.createRepl({ name: "racing", template: "node" });
    const replId = repl!.replId;
    t.driver.startDelayMs = 700;
    const starting = c.startRepl({ replId });
    await new Promise((r) => setTimeout(r, 200)); // the start holds the lock now
    const set = await c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } });
    await starting;
    assert.equal(set.repl?.status, ReplStatus.RUNNING);
    assert.deepEqual(t.driver.starts.find((s) => s.replId === replId)?.egress?.mode, "allow_all");
    assert.deepEqual(changesFor(replId), [
      { replId, runnerId: startedRunner(replId), egress: { mode: "deny_all", domains: [], cidrs: [] } },
    ]);
  });

  it("WatchRepl shows a policy change", async () => {
    const { repl } = await c.createRepl({ name: "watched", template: "node" });
    const replId = repl!.replId;
    const watch = new AbortController();
    const seen: Array<ReturnType<typeof policyOf>> = [];
    for await (const u of c.watchRepl({ replId }, { signal: watch.signal })) {
      seen.push(policyOf(u.repl));
      if (seen.length === 1) await c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } });
      else break;
    }
    watch.abort();
    assert.deepEqual(seen, [allowAll, denyAll]);
  });

  it("refuses bad policies with InvalidArgument naming the entry, and stores nothing", async () => {
    const { repl } = await c.createRepl({ name: "bad", template: "node" });
    const replId = repl!.replId;
    const bad: Array<[{ allowDomains?: string[]; allowCidrs?: string[] }, RegExp]> = [
      [{ allowCidrs: ["169.254.169.254"] }, /169\.254\.169\.254\/32 is always denied/],
      [{ allowCidrs: ["127.0.0.0/8"] }, /127\.0\.0\.0\/8 is always denied/],
      [{ allowCidrs: ["10.0.0.0/33"] }, /"10\.0\.0\.0\/33" is not an address range \(use forms like/],
      [{ allowCidrs: ["example.com"] }, /"example\.com" is not an address range/],
      [{ allowDomains: ["exa mple.com"] }, /"exa mple\.com" is not a domain name \(use names like/],
      [{ allowDomains: ["*.*.example.com"] }, /"\*\.\*\.example\.com" is not a domain name/],
    ];
    for (const [lists, message] of bad) {
      const egress = { mode: EgressMode.ALLOWLIST, ...lists };
      await assert.rejects(c.setEgressPolicy({ replId, egress }), code(Code.InvalidArgument, message));
      await assert.rejects(
        c.createRepl({ name: "never", template: "node", egress }),
        code(Code.InvalidArgument, message),
      );
    }
    const many = Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    await assert.rejects(
      c.setEgressPolicy({ replId, egress: { mode: EgressMode.ALLOWLIST, allowCidrs: many } }),
      code(Code.InvalidArgument),
    );
    const { repls } = await c.listRepls({});
    assert.deepEqual(
      repls.map((r) => r.name),
      ["bad"],
    );
    assert.deepEqual(policyOf(repls[0]), allowAll);
  });

  it("another user's repl is NotFound and keeps its policy", async () => {
    const { repl } = await c.createRepl({ name: "private", template: "node" });
    const replId = repl!.replId;
    await c.startRepl({ replId });
    const mallory = await t.as(`mallory${user}`);
    await assert.rejects(
      mallory.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } }),
      code(Code.NotFound, new RegExp(`repl ${replId} not found`)),
    );
    await assert.rejects(mallory.getRepl({ replId }), code(Code.NotFound));
    const anonymous = clientsFor(t.started.core.url).repl;
    await assert.rejects(
      anonymous.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } }),
      code(Code.Unauthenticated),
    );
    assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), allowAll);
    assert.equal(changesFor(replId).length, 0);
  });

  it("refuses a change while the repl is being deleted", async () => {
    const { repl } = await c.createRepl({ name: "going", template: "node" });
    const replId = repl!.replId;
    await t.started.state.transitionRepl(replId, ["stopped"], { status: "deleting" });
    await assert.rejects(
      c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } }),
      code(Code.FailedPrecondition, /being deleted/),
    );
    assert.equal((await t.started.state.getRepl(replId))?.egress?.mode, "allow_all");
  });

  it("when the runner cannot apply a change: Unavailable without backend text, the policy saved for the next start", async () => {
    const { repl } = await c.createRepl({ name: "failing", template: "node" });
    const replId = repl!.replId;
    await c.startRepl({ replId });
    t.driver.failSetEgress = true;
    const err = await c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } }).then(
      () => assert.fail("SetEgressPolicy succeeded although the driver failed"),
      (e) => ConnectError.from(e),
    );
    assert.equal(Code[err.code], Code[Code.Unavailable]);
    assert.match(err.message, /saved and applies when the repl next starts/);
    assert.doesNotMatch(err.message, /nft|No such file|test driver/);
    assert.equal(changesFor(replId).length, 1);
    assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), denyAll);
    t.driver.failSetEgress = false;
    await c.stopRepl({ replId });
    await c.startRepl({ replId });
    assert.equal(t.driver.starts.filter((s) => s.replId === replId).at(-1)?.egress?.mode, "deny_all");
  });

  it("a record stored before egress policies reads as the default, and keeps its policy across a restart", async () => {
    const owner = `user${user}`;
    const now = Date.now();
    const old = {
      replId: "rold0000000001",
      name: "old",
      template: "npm-only",
      owner,
      status: "stopped" as const,
      createTime: now,
      updateTime: now,
      persistTime: 0,
      lastError: "",
    };
    assert.ok(await t.started.state.createRepl(old, 100));
    assert.deepEqual(policyOf((await c.getRepl({ replId: old.replId })).repl), npmOnly);
    await c.startRepl({ replId: old.replId });
    assert.equal(t.driver.starts.find((s) => s.replId === old.replId)?.egress?.mode, "allowlist");
    await c.stopRepl({ replId: old.replId });
    await c.setEgressPolicy({
      replId: old.replId,
      egress: { mode: EgressMode.ALLOW_ALL, allowCidrs: ["10.1.0.0/16"] },
    });

    await t.close();
    t = await startEgressCore(dir, { DEVEX_TEMPLATES_DIR: templates });
    c = await t.as(owner);
    assert.deepEqual(policyOf((await c.getRepl({ replId: old.replId })).repl), {
      mode: "ALLOW_ALL",
      domains: [],
      cidrs: ["10.1.0.0/16"],
    });
  });
});

describe("egress policy: the operator's configuration", function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-egress-config-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("DEVEX_EGRESS_DEFAULT=deny_all applies to templates without a policy, not to those with one", async () => {
    const t = await startEgressCore(dir, {
      DEVEX_TEMPLATES_DIR: await makeTemplates(dir),
      DEVEX_EGRESS_DEFAULT: "deny_all",
    });
    try {
      const c = await t.as("alice");
      const { repl } = await c.createRepl({ name: "a", template: "node" });
      assert.deepEqual(policyOf(repl), denyAll);
      const { repl: npm } = await c.createRepl({ name: "b", template: "npm-only" });
      assert.deepEqual(policyOf(npm), npmOnly);
      // A reset returns to the operator's default.
      await c.setEgressPolicy({ replId: repl!.replId, egress: { mode: EgressMode.ALLOW_ALL } });
      const reset = await c.setEgressPolicy({ replId: repl!.replId, egress: {} });
      assert.deepEqual(policyOf(reset.repl), denyAll);
    } finally {
      await t.close();
    }
  });

  it("a bad DEVEX_EGRESS_DENY_CIDRS fails core's start naming the entry", async () => {
    await assert.rejects(
      startEgressCore(dir, { DEVEX_EGRESS_DENY_CIDRS: "10.96.0.0/12, 10.300.0.0/16" }),
      /DEVEX_EGRESS_DENY_CIDRS: "10\.300\.0\.0\/16" is not an address range/,
    );
  });

  it("a template whose policy is bad fails core's start naming its template.json", async () => {
    const templates = await makeTemplates(dir, {
      metadata: { title: "metadata", egress: { mode: "allowlist", cidrs: ["169.254.169.254"] } },
    });
    await assert.rejects(
      startEgressCore(dir, { DEVEX_TEMPLATES_DIR: templates }),
      /metadata\/template\.json: egress: 169\.254\.169\.254\/32 is always denied/,
    );
  });
});

describe("egress policy in the Redis state store", function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let raw: Redis;
  let dir: string;

  before(async function () {
    redis = await startRedis(requireProgram(this, "redis-server"));
    raw = new Redis(redis.url);
    dir = await mkdtemp(join(tmpdir(), "devex-egress-redis-"));
  });
  after(async () => {
    raw?.disconnect();
    await redis?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("stores the policy with the record, reads records without one as the default, and keeps both across a restart", async () => {
    const env = { REDIS_URL: redis.url, DEVEX_TEMPLATES_DIR: await makeTemplates(dir) };
    let t = await startEgressCore(dir, env);
    try {
      let c = await t.as("alice");
      const egress = { mode: EgressMode.ALLOWLIST, allowDomains: ["pypi.org"], allowCidrs: ["10.2.0.0/16"] };
      const { repl } = await c.createRepl({ name: "r", template: "node", egress });
      const replId = repl!.replId;
      const expected = { mode: "ALLOWLIST", domains: ["pypi.org"], cidrs: ["10.2.0.0/16"] };
      assert.deepEqual(JSON.parse((await raw.hget(`replMeta:${replId}`, "egress")) ?? "null"), {
        mode: "allowlist",
        domains: ["pypi.org"],
        cidrs: ["10.2.0.0/16"],
      });
      assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), expected);

      // A record as core wrote it before egress policies: no egress field.
      const now = String(Date.now());
      await raw.hset("replMeta:rold0000000002", {
        replId: "rold0000000002",
        name: "old",
        template: "npm-only",
        owner: "alice",
        status: "stopped",
        createTime: now,
        updateTime: now,
        persistTime: "0",
        lastError: "",
      });
      await raw.sadd("userRepls:alice", "rold0000000002");
      const listed = new Map((await c.listRepls({})).repls.map((r) => [r.replId, policyOf(r)]));
      assert.deepEqual(listed.get(replId), expected);
      assert.deepEqual(listed.get("rold0000000002"), npmOnly);

      await c.startRepl({ replId });
      const set = await c.setEgressPolicy({ replId, egress: { mode: EgressMode.DENY_ALL } });
      assert.deepEqual(policyOf(set.repl), denyAll);
      assert.equal(t.driver.egressChanges.at(-1)?.egress.mode, "deny_all");
      await c.stopRepl({ replId });
      assert.equal(
        await raw.hget("replMeta:rold0000000002", "egress"),
        null,
        "reading an old record does not write it",
      );

      await t.close();
      t = await startEgressCore(dir, env);
      c = await t.as("alice");
      assert.deepEqual(policyOf((await c.getRepl({ replId })).repl), denyAll);
      assert.deepEqual(policyOf((await c.getRepl({ replId: "rold0000000002" })).repl), npmOnly);
    } finally {
      await t.close();
    }
  });
});
