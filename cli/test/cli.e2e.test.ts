/**
 * The `devex` CLI end to end: the real entry point as a child process against a real embedded core
 * (local driver, real runner processes, its own temp dirs and random ports); `attach` under a real
 * outer PTY.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EgressMode } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { addOperatorTemplate } from "../../lib/testing/templates.js";
import { adminSocketPath } from "../../services/core/src/admin/admin-socket.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { type Embedded, startEmbedded } from "../../services/core/test/embedded.js";
import { cliEnv, devexBin, PtyRun, runCli } from "./cli-process.js";
import { type Http1Front, startHttp1Front } from "./http1-front.js";

const bash = ["--command", "exec bash --norc --noprofile"];

/** `p`, or a failure after `ms` naming what was awaited (a hang says where it was). */
function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("devex CLI (embedded core)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let home: string;
  let alice: NodeJS.ProcessEnv;
  let bob: NodeJS.ProcessEnv;
  let aliceToken: string;
  let bobToken: string;
  const ptys: PtyRun[] = [];

  before(async function () {
    requireProgram(this, "bash");
    e = await startEmbedded();
    home = await mkdtemp(join(tmpdir(), "devex-cli-"));
    aliceToken = (await issueApiToken(e.state, "alice", "cli")).secret;
    bobToken = (await issueApiToken(e.state, "bob", "cli")).secret;
    alice = cliEnv(join(home, "alice"));
    bob = cliEnv(join(home, "bob"));
    for (const [env, token] of [
      [alice, aliceToken],
      [bob, bobToken],
    ] as const) {
      const r = await runCli(["login", "--url", e.core.url, "--token", token], env);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    for (const p of ptys) p.kill();
    await e?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  function pty(
    args: string[],
    env: NodeJS.ProcessEnv,
    size?: { cols: number; rows: number },
    opts?: { terminal?: boolean },
  ): PtyRun {
    const p = new PtyRun(process.execPath, [devexBin, ...args], env, size, opts);
    ptys.push(p);
    return p;
  }

  describe("login", () => {
    let fresh: NodeJS.ProcessEnv;
    before(() => {
      fresh = cliEnv(join(home, "fresh"));
    });

    it("refuses a bad token with one clear line, exit 1, and writes no config", async () => {
      const r = await runCli(["login", "--url", e.core.url, "--token", "dvx_not-a-real-token"], fresh);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^devex: login failed: .* rejected the token\n$/);
      assert.doesNotMatch(r.stderr, /dvx_not-a-real-token|\n\s+at /);
      await assert.rejects(stat(join(home, "fresh", "devex")), { code: "ENOENT" });
    });

    it("stores a good token (read from stdin) in a 0600 file in a 0700 dir, and whoami shows the user", async () => {
      const r = await runCli(["login", "--url", e.core.url, "--token", "-"], fresh, `${aliceToken}\n`);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(aliceToken));
      const dir = join(home, "fresh", "devex");
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(dir, "config.json"))).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(await readFile(join(dir, "config.json"), "utf8")), {
        url: e.core.url,
        token: aliceToken,
      });
      const who = await runCli(["whoami"], fresh);
      assert.equal(who.code, 0, who.stderr);
      assert.match(who.stdout, /^alice\b/);
      assert.match((await runCli(["whoami"], bob)).stdout, /^bob\b/);
    });

    it("DEVEX_URL and DEVEX_TOKEN override the stored login; logout forgets it", async () => {
      const asBob = await runCli(["whoami"], { ...alice, DEVEX_URL: e.core.url, DEVEX_TOKEN: bobToken });
      assert.match(asBob.stdout, /^bob\b/);
      const env = cliEnv(join(home, "carol"));
      assert.equal((await runCli(["login", "--url", e.core.url, "--token", aliceToken], env)).code, 0);
      const out = await runCli(["logout"], env);
      assert.equal(out.code, 0);
      const who = await runCli(["whoami"], env);
      assert.equal(who.code, 1);
      assert.match(who.stderr, /run devex login/);
    });

    it("usage errors exit 2 with the usage text", async () => {
      const r = await runCli(["create", "--bogus"], alice);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /usage: devex/);
      const unknown = await runCli(["frobnicate"], alice);
      assert.equal(unknown.code, 2);
    });
  });

  describe("repls", () => {
    it("create, ls, start, stop, rm round trip by name and id", async () => {
      const tpl = await runCli(["templates"], alice);
      assert.equal(tpl.code, 0, tpl.stderr);
      assert.match(tpl.stdout, /^node\b/m);

      const created = await runCli(["create", "--template", "node", "--name", "round-trip"], alice);
      assert.equal(created.code, 0, created.stderr);
      const id = created.stdout.trim();
      assert.match(id, /^[a-z0-9-]+$/);

      const ls = await runCli(["ls"], alice);
      assert.match(ls.stdout, /^ID\s+NAME\s+TEMPLATE\s+STATE\s+NETWORK\s+SETUP$/m);
      assert.match(ls.stdout, new RegExp(`^${id}\\s+round-trip\\s+node\\s+stopped\\s+allow-all$`, "m"));

      const started = await runCli(["start", "round-trip"], alice);
      assert.equal(started.code, 0, started.stderr);
      assert.match((await runCli(["ls"], alice)).stdout, new RegExp(`^${id}\\s+round-trip\\s+node\\s+running\\s`, "m"));

      const stopped = await runCli(["stop", id], alice);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match((await runCli(["ls"], alice)).stdout, new RegExp(`^${id}\\s+round-trip\\s+node\\s+stopped\\s`, "m"));

      const refused = await runCli(["rm", id], alice);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--yes/);
      const removed = await runCli(["rm", id, "--yes"], alice);
      assert.equal(removed.code, 0, removed.stderr);
      assert.doesNotMatch((await runCli(["ls"], alice)).stdout, new RegExp(id));
      const gone = await runCli(["start", id], alice);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr, `devex: no repl ${id} (see devex ls)\n`);
    });

    it("rm asks on a terminal: anything but y keeps the repl, y deletes it", async () => {
      const id = (await runCli(["create", "--template", "node", "--name", "ask"], alice)).stdout.trim();
      const no = pty(["rm", "ask"], alice);
      await no.waitFor(new RegExp(`Delete repl ${id} \\("ask"\\) and its files\\? \\[y/N\\] `));
      no.write("n\r");
      assert.equal(await no.exited, 1);
      assert.match(no.output, /devex: not deleted/);
      assert.match((await runCli(["ls"], alice)).stdout, new RegExp(`^${id}\\s`, "m"));

      const yes = pty(["rm", id], alice);
      await yes.waitFor(/\[y\/N\] /);
      yes.write("y\r");
      assert.equal(await yes.exited, 0);
      assert.match(yes.output, new RegExp(`deleted ${id}`));
      assert.doesNotMatch((await runCli(["ls"], alice)).stdout, new RegExp(id));
    });

    it("another user's repl by id is not found, not permission denied", async () => {
      const id = (await runCli(["create", "--template", "node", "--name", "bobs"], bob)).stdout.trim();
      for (const args of [
        ["start", id],
        ["stop", id],
        ["rm", id, "--yes"],
        ["exec", id, "--", "true"],
      ]) {
        const r = await runCli(args, alice);
        assert.equal(r.code, 1, args.join(" "));
        assert.equal(r.stderr, `devex: no repl ${id} (see devex ls)\n`);
      }
      assert.match((await runCli(["ls"], bob)).stdout, new RegExp(`^${id}\\s`, "m"));
    });
  });

  describe("network", () => {
    // A user of its own: alice's quota of repls is spent by the other tests.
    let dana: NodeJS.ProcessEnv;
    let danaCore: CoreClients;
    before(async () => {
      const token = (await issueApiToken(e.state, "dana", "cli")).secret;
      dana = cliEnv(join(home, "dana"), { DEVEX_URL: e.core.url, DEVEX_TOKEN: token });
      danaCore = coreClientsFor(e.core.url, { token });
    });
    const egressOf = async (replId: string) => (await danaCore.repls.getRepl({ replId })).repl?.egress;

    it("create --network sets the policy; ls shows the mode; network shows it with the always-denied ranges", async () => {
      const denied = await runCli(["create", "--template", "node", "--name", "sealed", "--network", "deny-all"], dana);
      assert.equal(denied.code, 0, denied.stderr);
      const sealed = denied.stdout.trim();
      const listed = await runCli(
        ["create", "--template", "node", "--name", "listed", "--network", "registry.npmjs.org,10.1.0.0/16"],
        dana,
      );
      assert.equal(listed.code, 0, listed.stderr);
      const listedId = listed.stdout.trim();
      assert.equal((await egressOf(sealed))?.mode, EgressMode.DENY_ALL);
      const allowlist = await egressOf(listedId);
      assert.equal(allowlist?.mode, EgressMode.ALLOWLIST);
      assert.deepEqual(allowlist?.allowDomains, ["registry.npmjs.org"]);
      assert.deepEqual(allowlist?.allowCidrs, ["10.1.0.0/16"]);

      const ls = await runCli(["ls"], dana);
      assert.match(ls.stdout, new RegExp(`^${sealed}\\s+sealed\\s+node\\s+stopped\\s+deny-all$`, "m"));
      assert.match(ls.stdout, new RegExp(`^${listedId}\\s+listed\\s+node\\s+stopped\\s+allowlist$`, "m"));

      const shown = await runCli(["network", "listed"], dana);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`^repl: +${listedId}$`, "m"));
      assert.match(shown.stdout, /^mode: +allowlist$/m);
      assert.match(shown.stdout, /^domains: +registry\.npmjs\.org$/m);
      assert.match(shown.stdout, /^cidrs: +10\.1\.0\.0\/16$/m);
      assert.match(shown.stdout, /^always denied: .*\b127\.0\.0\.0\/8\b.*\b169\.254\.0\.0\/16\b/m);
    });

    it("--allow (repeatable, comma-separated), --allow-all with private CIDRs, --deny-all and --default change it", async () => {
      const id = (await runCli(["ls"], dana)).stdout.match(/^(\S+)\s+sealed\s/m)![1];
      const allow = await runCli(
        ["network", id, "--allow", "Registry.npmjs.org,*.github.com", "--allow", "203.0.113.0/24"],
        dana,
      );
      assert.equal(allow.code, 0, allow.stderr);
      assert.match(allow.stdout, /^mode: +allowlist$/m);
      assert.match(allow.stdout, /^domains: +registry\.npmjs\.org \*\.github\.com$/m);
      const now = await egressOf(id);
      assert.equal(now?.mode, EgressMode.ALLOWLIST);
      assert.deepEqual(now?.allowDomains, ["registry.npmjs.org", "*.github.com"]);
      assert.deepEqual(now?.allowCidrs, ["203.0.113.0/24"]);

      const open = await runCli(["network", id, "--allow-all", "--allow", "192.168.7.0/24"], dana);
      assert.equal(open.code, 0, open.stderr);
      assert.deepEqual(await egressOf(id).then((p) => [p?.mode, p?.allowDomains, p?.allowCidrs]), [
        EgressMode.ALLOW_ALL,
        [],
        ["192.168.7.0/24"],
      ]);

      assert.equal((await runCli(["network", id, "--deny-all"], dana)).code, 0);
      assert.equal((await egressOf(id))?.mode, EgressMode.DENY_ALL);
      const reset = await runCli(["network", id, "--default"], dana);
      assert.equal(reset.code, 0, reset.stderr);
      // The operator's default (DEVEX_EGRESS_DEFAULT): allow_all.
      assert.match(reset.stdout, /^mode: +allow-all$/m);
      assert.equal((await egressOf(id))?.mode, EgressMode.ALLOW_ALL);
    });

    it("bad entries are refused in one line that names them; flag mistakes are usage errors; others' repls are not found", async () => {
      const id = (await runCli(["ls"], dana)).stdout.match(/^(\S+)\s+listed\s/m)![1];
      const before = await egressOf(id);
      const name = await runCli(["network", id, "--allow", "bad_name!"], dana);
      assert.equal(name.code, 1);
      assert.match(name.stderr, /^devex: invalid argument: .*bad_name!.*\n$/);
      const loop = await runCli(["network", id, "--allow", "127.0.0.0/8"], dana);
      assert.equal(loop.code, 1);
      assert.match(loop.stderr, /^devex: invalid argument: .*127\.0\.0\.0\/8 .*always denied.*\n$/);
      assert.deepEqual(await egressOf(id), before);

      for (const args of [
        ["--deny-all", "--allow", "example.com"],
        ["--allow-all", "--deny-all"],
        ["--allow-all", "--allow", "example.com"],
        ["--allow", "a.example,,b.example"],
      ]) {
        const r = await runCli(["network", id, ...args], dana);
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.stderr, /usage: devex/);
      }
      const other = await runCli(["network", id, "--deny-all"], alice);
      assert.equal(other.code, 1);
      assert.equal(other.stderr, `devex: no repl ${id} (see devex ls)\n`);
      assert.deepEqual(await egressOf(id), before);
    });
  });

  describe("preview", () => {
    let erin: NodeJS.ProcessEnv;
    before(async () => {
      const token = (await issueApiToken(e.state, "erin", "cli")).secret;
      erin = cliEnv(join(home, "erin"), { DEVEX_URL: e.core.url, DEVEX_TOKEN: token });
    });

    it("shows and changes who may open previews, per port and by default, and prints links for shared ports", async () => {
      assert.equal((await runCli(["create", "--template", "node", "--name", "site"], erin)).code, 0);
      const shown = await runCli(["preview", "site"], erin);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^PORT\s+VISIBILITY\s+WHO CAN OPEN\nother ports\s+private\s+you, signed in\n$/);
      const refused = await runCli(["preview-link", "site", "3000"], erin);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^devex: .*port 3000 .* is private: share it by link first.*\n$/);

      const linked = await runCli(["preview", "site", "3000", "--link"], erin);
      assert.equal(linked.code, 0, linked.stderr);
      assert.match(linked.stdout, /^3000\s+link\s+you, and anyone with a preview link/m);
      const link = await runCli(["preview-link", "site", "3000", "--ttl", "2h", "--path", "/docs"], erin);
      assert.equal(link.code, 0, link.stderr);
      const url = new URL(link.stdout.trim());
      assert.match(url.pathname, /\/preview\/3000\/docs$/);
      assert.ok(url.searchParams.get("token"));
      const until = Date.parse(/works until (\S+),/.exec(link.stderr)![1]);
      assert.ok(Math.abs(until - (Date.now() + 2 * 3600_000)) < 60_000, link.stderr);

      assert.match((await runCli(["preview", "site", "3000"], erin)).stdout, /^3000\s+link\s/m);
      assert.match((await runCli(["preview", "site", "4000"], erin)).stdout, /^4000\s+private\s/m);
      const publicDefault = await runCli(["preview", "site", "--public"], erin);
      assert.match(publicDefault.stdout, /^other ports\s+public\s+anyone with the address$/m);
      const unset = await runCli(["preview", "site", "3000", "--default"], erin);
      assert.doesNotMatch(unset.stdout, /^3000/m);
    });

    it("flag mistakes are usage errors; another user's repl is not found", async () => {
      for (const args of [
        ["preview", "site", "--private", "--public"],
        ["preview", "site", "70000", "--link"],
        ["preview", "site", "3000", "4000"],
        ["preview-link", "site"],
        ["preview-link", "site", "3000", "--ttl", "31d"],
        ["preview-link", "site", "3000", "--path", "docs"],
      ]) {
        const r = await runCli(args, erin);
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.stderr, /usage: devex/);
      }
      const id = (await runCli(["ls"], erin)).stdout.match(/^(\S+)\s+site\s/m)![1];
      const other = await runCli(["preview", id, "--public"], alice);
      assert.equal(other.code, 1);
      assert.equal(other.stderr, `devex: no repl ${id} (see devex ls)\n`);
    });
  });

  describe("env", () => {
    let fran: NodeJS.ProcessEnv;
    let franCore: CoreClients;
    let id: string;
    const secretValue = "s3cr3t-fran-value";
    before(async () => {
      const token = (await issueApiToken(e.state, "fran", "cli")).secret;
      fran = cliEnv(join(home, "fran"), { DEVEX_URL: e.core.url, DEVEX_TOKEN: token });
      franCore = coreClientsFor(e.core.url, { token });
      const created = await runCli(["create", "--template", "node", "--name", "envs"], fran);
      assert.equal(created.code, 0, created.stderr);
      id = created.stdout.trim();
    });
    const stored = async () =>
      (await franCore.repls.listEnvironmentVariables({ replId: id })).variables.map((v) => [v.name, v.value, v.secret]);
    /** Waits until a command in the repl gets `name` as `value`: a change reaches a running repl within a second. */
    async function replSees(name: string, value: string) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const seen = await runCli(["exec", id, "--", "printenv", name], fran);
        if (seen.stdout === `${value}\n`) return;
        assert.ok(Date.now() < deadline, `a command never got ${name}: ${JSON.stringify(seen)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    it("sets plain variables from arguments and a secret from stdin; lists them by name, the secret masked", async () => {
      const set = await runCli(["env", "envs", "set", "ZED=last", "API_URL=https://x.test/?a=b"], fran);
      assert.equal(set.code, 0, set.stderr);
      const secret = await runCli(["env", "envs", "set", "--secret", "API_KEY"], fran, `${secretValue}\n`);
      assert.equal(secret.code, 0, secret.stderr);
      assert.doesNotMatch(secret.stdout, new RegExp(secretValue));
      assert.deepEqual(await stored(), [
        ["API_KEY", "", true],
        ["API_URL", "https://x.test/?a=b", false],
        ["ZED", "last", false],
      ]);

      const listed = await runCli(["env", id], fran);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(
        listed.stdout,
        [
          "NAME     VALUE                SECRET",
          "API_KEY  (secret)             yes",
          "API_URL  https://x.test/?a=b  no",
          "ZED      last                 no",
          "",
        ].join("\n"),
      );
      assert.doesNotMatch(listed.stdout + listed.stderr, new RegExp(secretValue));

      // The value, without its trailing newline, is what a command in the repl gets.
      await replSees("API_KEY", secretValue);
    });

    it("set --secret on a terminal reads one line without echoing it (Backspace edits it); Ctrl-C cancels", async () => {
      const typed = "typed-s3cret-4b9d";
      const p = pty(["env", "envs", "set", "--secret", "TYPED_KEY"], fran);
      await p.waitFor(/Value of TYPED_KEY \(not shown\): /);
      p.write("oops\x7f\x7f\x7f\x7f");
      p.write(`${typed}\r`);
      assert.equal(await p.exited, 0, p.output);
      assert.doesNotMatch(p.output, /typed-s3cret|oops/, "nothing typed is echoed");
      assert.match(p.output, /\(not shown\): \r?\n/, "a newline after the hidden input");
      assert.match(p.output, /^TYPED_KEY +\(secret\) +yes\r?$/m);
      assert.deepEqual(
        (await stored()).find(([name]) => name === "TYPED_KEY"),
        ["TYPED_KEY", "", true],
      );
      await replSees("TYPED_KEY", typed);

      const cancelled = pty(["env", "envs", "set", "--secret", "TYPED_TWO"], fran);
      await cancelled.waitFor(/Value of TYPED_TWO \(not shown\): /);
      cancelled.write("abc\x03");
      assert.equal(await cancelled.exited, 130, cancelled.output);
      assert.match(cancelled.output, /devex: cancelled: nothing was set/);
      assert.doesNotMatch(cancelled.output, /abc/);
      assert.equal(
        (await stored()).find(([name]) => name === "TYPED_TWO"),
        undefined,
      );
      assert.equal((await runCli(["env", "envs", "rm", "TYPED_KEY"], fran)).code, 0);
    });

    it("rm removes variables and secrets", async () => {
      const r = await runCli(["env", "envs", "rm", "ZED", "API_KEY"], fran);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "NAME     VALUE                SECRET\nAPI_URL  https://x.test/?a=b  no\n");
      assert.deepEqual(await stored(), [["API_URL", "https://x.test/?a=b", false]]);
    });

    it("a reserved name is refused by the server in one line; bad arguments are usage errors; others' repls are not found", async () => {
      const reserved = await runCli(["env", "envs", "set", "HOME=/tmp"], fran);
      assert.equal(reserved.code, 1);
      assert.match(reserved.stderr, /^devex: invalid argument: .*HOME is set by the repl itself.*\n$/);
      // One call per name: a refusal after the first says which names were set and which were not.
      const half = await runCli(["env", "envs", "set", "FIRST=1", "HOME=/tmp", "LAST=3"], fran);
      assert.equal(half.code, 1);
      assert.match(
        half.stderr,
        /^devex: invalid argument: .*HOME is set by the repl itself.* \(already set: FIRST; not set: HOME, LAST\)\n$/,
      );
      assert.deepEqual(await stored(), [
        ["API_URL", "https://x.test/?a=b", false],
        ["FIRST", "1", false],
      ]);
      assert.equal((await runCli(["env", "envs", "rm", "FIRST"], fran)).code, 0);
      for (const [args, input] of [
        [["env", "envs", "set", "FOO"]],
        [["env", "envs", "set", "1FOO=x"]],
        [["env", "envs", "set", "BAD-NAME=x"]],
        [["env", "envs", "set"]],
        [["env", "envs", "rm"]],
        [["env", "envs", "rm", "A B"]],
        [["env", "envs", "unset", "FOO"]],
        [["env", "envs", "rm", "--secret", "FOO"]],
        [["env", "envs", "set", "--secret", "TOKEN=visible"], ""],
        [["env", "envs", "set", "--secret", "TOKEN"], ""],
        [["env", "envs", "set", "--secret", "TOKEN"], "\n"],
        [["env"]],
      ] as Array<[string[], string?]>) {
        const r = await runCli(args, fran, input);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /usage: devex/);
      }
      assert.deepEqual(await stored(), [["API_URL", "https://x.test/?a=b", false]]);

      for (const args of [
        ["env", id],
        ["env", id, "set", "FOO=bar"],
        ["env", id, "rm", "API_URL"],
      ]) {
        const other = await runCli(args, alice);
        assert.equal(other.code, 1);
        assert.equal(other.stderr, `devex: no repl ${id} (see devex ls)\n`);
      }
      assert.deepEqual(await stored(), [["API_URL", "https://x.test/?a=b", false]]);
    });
  });

  describe("templates", () => {
    // A user of their own: a repl and one made from its template fill the quota of two.
    let tess: NodeJS.ProcessEnv;
    before(async () => {
      const token = (await issueApiToken(e.state, "tess", "cli")).secret;
      tess = cliEnv(join(home, "tess"), { DEVEX_URL: e.core.url, DEVEX_TOKEN: token });
      await addOperatorTemplate(
        adminSocketPath(e.dir),
        "counted",
        {
          title: "Counted",
          run_command: "cat .setup-count",
          setup_command: "echo setting up; echo ran >> .setup-count",
          preview_port: 8000,
        },
        { "README.md": "# counted\n" },
      );
    });

    const execOut = async (id: string, command: string) => {
      const r = await runCli(["exec", id, "--", "sh", "-c", command], tess);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };

    it("lists the operator's templates with their commands and port; setup runs once; save, create from it, delete", async () => {
      const list = await runCli(["templates"], tess);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^NAME\s+TITLE\s+WHOSE\s+RUN\s+SETUP\s+PORT$/m);
      assert.match(
        list.stdout,
        /^counted\s+Counted\s+operator\s+cat \.setup-count\s+echo setting up; echo ran >> \.setup-count\s+8000$/m,
      );
      assert.match(list.stdout, /^node\s+Node\.js\s+operator\s+node index\.js$/m);

      const id = (await runCli(["create", "--template", "counted", "--name", "counted-1"], tess)).stdout.trim();
      assert.match(
        (await runCli(["ls"], tess)).stdout,
        new RegExp(`^${id}\\s+counted-1\\s+counted\\s+stopped\\s+\\S+\\s+pending$`, "m"),
      );
      const notYet = await runCli(["setup", id], tess);
      assert.match(notYet.stdout, /^echo setting up; echo ran >> \.setup-count\s+pending$/m);

      assert.equal((await runCli(["start", id], tess)).code, 0);
      const followed = await runCli(["setup", id, "--follow"], tess);
      assert.equal(followed.code, 0, followed.stderr);
      assert.match(followed.stdout, /^COMMAND\s+STATUS$/m);
      assert.match(followed.stdout, /^setting up$/m, "the setup process's output");
      assert.match(followed.stdout, /\nsetup succeeded\n$/);
      assert.match((await runCli(["ls"], tess)).stdout, new RegExp(`^${id}\\s.*\\ssucceeded$`, "m"));
      assert.equal(await execOut(id, "cat .setup-count"), "ran\n");

      // Saving reads stored files: a running repl is refused with the way out.
      const running = await runCli(["template", "save", id, "--title", "Mine"], tess);
      assert.equal(running.code, 1);
      assert.match(
        running.stderr,
        new RegExp(`^devex: cannot save ${id} as a template while it runs: stop the repl first: devex stop ${id}\\n$`),
      );

      assert.equal((await runCli(["stop", id], tess)).code, 0);
      assert.equal((await runCli(["start", id], tess)).code, 0);
      assert.equal(await execOut(id, "cat .setup-count"), "ran\n", "not run again on the next start");
      assert.equal((await runCli(["stop", id], tess)).code, 0);

      const saved = await runCli(
        [
          "template",
          "save",
          "counted-1",
          "--title",
          "My counted",
          "--description",
          "d",
          "--run",
          "echo RUN-OK",
          "--port",
          "5173",
        ],
        tess,
      );
      assert.equal(saved.code, 0, saved.stderr);
      const name = saved.stdout.trim();
      assert.match(name, /^[a-z0-9][a-z0-9-]*$/);
      assert.equal(saved.stdout, `${name}\n`, "stdout is the name alone, for scripts");
      assert.match(saved.stderr, new RegExp(`create a repl from it: devex create --template ${name}\\n$`));
      assert.match(
        (await runCli(["templates"], tess)).stdout,
        new RegExp(
          `^${name}\\s+My counted\\s+yours\\s+echo RUN-OK\\s+echo setting up; echo ran >> \\.setup-count\\s+5173$`,
          "m",
        ),
      );
      assert.doesNotMatch((await runCli(["templates"], bob)).stdout, new RegExp(name), "private to its owner");
      const bobs = await runCli(["create", "--template", name, "--name", "stolen"], bob);
      assert.equal(bobs.code, 1, "another user cannot create from it");

      const copy = (await runCli(["create", "--template", name, "--name", "copy"], tess)).stdout.trim();
      assert.match(copy, /^[a-z0-9-]+$/);
      assert.match(
        (await runCli(["ls"], tess)).stdout,
        new RegExp(`^${copy}\\s+copy\\s+${name}\\s+stopped\\s+\\S+\\s+pending$`, "m"),
      );
      assert.equal((await runCli(["start", copy], tess)).code, 0);
      assert.match((await runCli(["setup", copy, "--follow"], tess)).stdout, /\nsetup succeeded\n$/);
      // The saved files came along (one line from the first repl's setup), and its own setup added one.
      assert.equal(await execOut(copy, "cat .setup-count; cat README.md"), "ran\nran\n# counted\n");

      const deleted = await runCli(["template", "delete", name], tess);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout, `deleted template ${name}\n`);
      assert.doesNotMatch((await runCli(["templates"], tess)).stdout, new RegExp(name));
      for (const other of [name, "counted"]) {
        const gone = await runCli(["template", "delete", other], tess);
        assert.equal(gone.code, 1);
        assert.equal(
          gone.stderr,
          `devex: no template ${other} of yours (see devex templates; the operator's cannot be deleted)\n`,
        );
      }
      assert.equal(await execOut(copy, "cat README.md"), "# counted\n", "its repls keep their files");
      for (const r of [id, copy]) assert.equal((await runCli(["rm", r, "--yes"], tess)).code, 0);
    });

    it("usage errors exit 2; another user's repl is not found", async () => {
      for (const args of [
        ["template"],
        ["template", "frob"],
        ["template", "save", "x"],
        ["template", "save", "x", "--title", "t", "--port", "70000"],
        ["template", "delete"],
        ["setup"],
      ]) {
        const r = await runCli(args, tess);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /usage: devex/);
      }
      const bobs = (await runCli(["create", "--template", "node", "--name", "bobs-tpl"], bob)).stdout.trim();
      const r = await runCli(["template", "save", bobs, "--title", "not mine"], tess);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `devex: no repl ${bobs} (see devex ls)\n`);
      assert.equal((await runCli(["rm", bobs, "--yes"], bob)).code, 0);
    });
  });

  describe("exec", () => {
    let id: string;
    before(async () => {
      id = (await runCli(["create", "--template", "node", "--name", "exec"], alice)).stdout.trim();
    });

    it("streams stdout and stderr apart and exits with the command's code (over gRPC by default)", async () => {
      const r = await runCli(["exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 5"], alice);
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
      assert.equal(r.code, 5);
      for (const [forced, used] of [
        [undefined, "grpc"],
        ["websocket", "connect over HTTP/1.1"],
      ]) {
        const env = { ...alice, DEVEX_DEBUG: "1", ...(forced && { DEVEX_TRANSPORT: forced }) };
        const again = await runCli(["exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 5"], env);
        assert.deepEqual([again.stdout, again.stderr, again.code], ["out\n", `devex: exec: ${used}\nerr\n`, 5]);
      }
    });

    it("--cwd, --stdin, and 128+signal for a killed command", async () => {
      await runCli(["exec", id, "--", "mkdir", "-p", "sub"], alice);
      const cwd = await runCli(["exec", id, "--cwd", "sub", "--", "sh", "-c", 'basename "$PWD"'], alice);
      assert.equal(cwd.stdout, "sub\n", cwd.stderr);
      const piped = await runCli(["exec", id, "--stdin", "--", "tr", "a-z", "A-Z"], alice, "piped\n");
      assert.equal(piped.stdout, "PIPED\n", piped.stderr);
      const killed = await runCli(["exec", id, "--", "sh", "-c", "kill -TERM $$"], alice);
      assert.equal(killed.code, 128 + 15);
    });

    it("a closed stdout ends it quietly (no stack trace)", async () => {
      const line = `"${process.execPath}" "${devexBin}" exec ${id} -- sh -c 'yes | head -c 50000000' | head -c 4; echo " rc=$?"`;
      const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
        execFile("sh", ["-c", line], { env: alice }, (err, stdout, stderr) =>
          err ? reject(err) : resolve({ stdout, stderr }),
        ),
      );
      assert.equal(r.stdout, "y\ny\n rc=0\n");
      assert.equal(r.stderr, "");
    });

    it("--timeout ends a command that runs too long", async () => {
      const r = await runCli(["exec", id, "--timeout", "1", "--", "sleep", "30"], alice);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /timed out after 1s/);
    });
  });

  // One repl for both transports' attach tests and the fallback (alice's quota is spent by then).
  let attachRepl: Promise<string> | undefined;
  const attachReplId = () => {
    attachRepl ??= runCli(["create", "--template", "node", "--name", "attach"], alice).then((r) => r.stdout.trim());
    return attachRepl;
  };

  for (const transport of ["grpc", "websocket"] as const) {
    describe(`attach over ${transport} (real outer PTY)`, () => {
      let id: string;
      /** alice, with DEVEX_TRANSPORT forcing the WebSocket bridge in its run (the default is gRPC). */
      let env: NodeJS.ProcessEnv;
      before(async () => {
        id = await attachReplId();
        env = transport === "grpc" ? alice : { ...alice, DEVEX_TRANSPORT: "websocket" };
      });

      it("runs commands, follows resizes, and exits with the shell's code with the tty restored", async () => {
        // The outer shell records its tty settings, runs the CLI, and compares them afterwards.
        const line = `before=$(stty -g); "${process.execPath}" "${devexBin}" attach ${id} --command 'exec bash --norc --noprofile'; rc=$?; [ "$(stty -g)" = "$before" ] && echo TTY-RESTORED; echo "CLI-EXIT=$rc"`;
        const p = new PtyRun("sh", ["-c", line], env, { cols: 80, rows: 24 });
        ptys.push(p);

        p.write("echo $((6*7))\r");
        await p.waitFor(/[\r\n]42\r\n/);

        const initial = p.output.length;
        p.write("stty size\r");
        await p.waitFor(/[\r\n]24 80\r\n/, initial);

        p.pty.resize(100, 40);
        // SIGWINCH and the typed line race inside the CLI; ask until the new size shows.
        for (;;) {
          const from = p.output.length;
          p.write("stty size\r");
          const m = await p.waitFor(/[\r\n](\d+ \d+)\r\n/, from);
          if (m[1] === "40 100") break;
        }

        p.write("exit 3\r");
        await p.waitFor(/CLI-EXIT=3/);
        assert.match(p.output, /TTY-RESTORED\r?\nCLI-EXIT=3/);
        assert.equal(await p.exited, 0);
      });

      it("detaches on Ctrl-], says how to reattach, and replays the output on reattach", async () => {
        const first = pty(["attach", id, ...bash], env);
        first.write("echo marker-$((20+22))\r");
        await first.waitFor(/[\r\n]marker-42\r\n/);
        first.write("\x1d");
        const [, terminalId] = await first.waitFor(
          new RegExp(`detached from terminal (\\S+); reattach with: devex attach ${id} --terminal \\S+`),
        );
        assert.equal(
          await withTimeout(
            first.exited,
            30_000,
            () => `the detached CLI to exit; it showed ${JSON.stringify(first.output)}`,
          ),
          0,
        );

        // A reattach drops input until the outer terminal answered the CLI's query after the replay.
        const again = pty(["attach", id, "--terminal", terminalId], env, undefined, { terminal: true });
        await again.waitFor(/[\r\n]marker-42\r\n/);
        await waitForValue(
          () => again.screen!.replies !== "",
          `the outer terminal's answer; the reattach showed ${JSON.stringify(again.output)}`,
        );
        again.write("exit 0\r");
        assert.equal(await again.exited, 0);

        // The runner's refusal is not a failed connection: no fallback (DEVEX_DEBUG would name it).
        const missing = await runCli(["attach", id, "--terminal", "t0-missing"], { ...env, DEVEX_DEBUG: "1" });
        assert.equal(missing.code, 1);
        assert.equal(missing.stderr, `devex: no terminal t0-missing in repl ${id}\n`);
      });

      it("reattach after vi and printf '\\e[c\\e[6n' under an answering outer terminal: the shell receives nothing; both attaches at the outer size", async function () {
        requireProgram(this, "vi");
        const size = { cols: 100, rows: 30 };
        const first = pty(["attach", id, ...bash], env, size);
        first.write("stty size\r");
        await first.waitFor(/[\r\n]30 100\r\n/);
        first.write("echo before-$((6*7)); vi\r");
        await first.waitFor(/\[\?1049h[\s\S]*~/);
        first.write("\x1b:q\r");
        await first.waitFor(/\[\?1049l/);
        first.write("printf '\\e[c\\e[6n'; stty -icanon -echo; echo cat-$((1+1))-ready; cat -v\r");
        await first.waitFor(/cat-2-ready/);
        first.write("\x1d");
        const [, terminalId] = await first.waitFor(/detached from terminal (\S+);/);
        assert.equal(await first.exited, 0);

        // The outer terminal is a real emulator: it answers every query the CLI prints.
        const again = pty(["attach", id, "--terminal", terminalId], env, size, { terminal: true });
        const screen = again.screen!;
        await waitForValue(() => /^cat-2-ready$/m.test(screen.text()), "the replay on the outer screen");
        // Answers to a replayed query would come before the one that opens the input.
        await waitForValue(() => screen.replies !== "", "the outer terminal's answer");
        again.write("MARK\r");
        await waitForValue(() => /MARK$/m.test(screen.text()), "cat printing the marker");
        // cat -v prints what reached the PTY: the marker, right under the line before it, and nothing else.
        assert.match(screen.text(), /^before-42$/m);
        assert.match(screen.text(), /^cat-2-ready\nMARK$/m);
        assert.equal(screen.bufferType, "normal");
        // Ctrl-C flushes the tty's input queue: type the next line once the prompt is back.
        const beforeInterrupt = again.output.length;
        again.write("\x03");
        await again.waitFor(/\$ $/, beforeInterrupt);
        again.write("stty size\r");
        await again.waitFor(/[\r\n]30 100\r\n/);
        again.write("exit 0\r");
        assert.equal(await again.exited, 0);
      });

      it("acks output as it is written: megabytes of output arrive whole (a wrong ack would stall the PTY)", async () => {
        const r = await runCli(["attach", id, "--command", "seq 1 400000"], env);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split("\r\n").filter(Boolean);
        assert.equal(lines.length, 400_000);
        assert.equal(lines.at(-1), "400000");
      });

      it("works with piped input (no tty): runs the lines and exits with the shell's code", async () => {
        const debug = { ...env, DEVEX_DEBUG: "1" };
        const r = await runCli(["attach", id, ...bash], debug, "echo piped-$((40+2))\nexit 4\n");
        assert.match(r.stdout, /piped-42/);
        assert.equal(r.code, 4, r.stderr);
        assert.equal(r.stderr, `devex: attach: ${transport}\n`, "the transport this run is about");
        // The repl's default login shell.
        const plain = await runCli(["attach", id], env, "echo default-$((40+2))\nexit 6\n");
        assert.match(plain.stdout, /default-42/);
        assert.equal(plain.code, 6, plain.stderr);
      });
    });
  }

  describe("behind a front that speaks only HTTP/1.1", () => {
    let front: Http1Front;
    let id: string;
    let env: NodeJS.ProcessEnv;
    before(async () => {
      id = await attachReplId();
      front = await startHttp1Front(e.core.url);
      env = cliEnv(join(home, "alice-front"), { DEVEX_URL: front.url, DEVEX_TOKEN: aliceToken, DEVEX_DEBUG: "1" });
    });
    after(() => front?.close());

    it("attach falls back to the WebSocket bridge and exec to Connect over HTTP/1.1, through the front", async () => {
      const attached = await runCli(["attach", id, ...bash], env, "echo front-$((40+2))\nexit 4\n");
      assert.match(attached.stdout, /front-42/);
      assert.equal(attached.code, 4, attached.stderr);
      assert.match(attached.stderr, /^devex: attach: websocket \(HTTP\/2 failed: ERR_HTTP2_\w+: .*\)\n$/);

      const ran = await runCli(["exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 5"], env);
      assert.equal(ran.stdout, "out\n");
      assert.match(ran.stderr, /^devex: exec: connect over HTTP\/1\.1 \(HTTP\/2 failed: [^\n]*\)\nerr\n$/);
      assert.equal(ran.code, 5);

      // Both went through the front (core's URL is not in the CLI's environment).
      assert.ok(
        front.seen.some((r) => r.startsWith(`UPGRADE /${id}/ws/terminals/`)),
        front.seen.join(", "),
      );
      assert.ok(front.seen.includes(`POST /${id}/devex.runner.v1.ProcessService/Exec`), front.seen.join(", "));
    });

    it("DEVEX_TRANSPORT=grpc does not fall back: the failure is one line that names the way out", async () => {
      const r = await runCli(["exec", id, "--", "true"], { ...env, DEVEX_TRANSPORT: "grpc" });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^devex: cannot reach the runner over gRPC \(HTTP\/2 failed: .*\); DEVEX_TRANSPORT=websocket uses HTTP\/1\.1\n$/,
      );
      const bad = await runCli(["exec", id, "--", "true"], { ...env, DEVEX_TRANSPORT: "h3" });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^devex: DEVEX_TRANSPORT must be grpc or websocket/);
    });
  });
});

/** Polls `f` until it holds (10 s). */
async function waitForValue(f: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
