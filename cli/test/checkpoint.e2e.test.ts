/**
 * `devex checkpoint`, `checkpoints`, `diff`, `restore` and `fork` end to end: the real CLI as a child
 * process against the embedded core (local driver, real runner processes), files written in the repl
 * with `devex exec` between checkpoints. The outputs are asserted as printed; `diff --patch`'s whole
 * output is applied with `git apply` to the earlier files and gives the later ones.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireProgram } from "../../lib/testing/programs.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { type Embedded, startEmbedded } from "../../services/core/test/embedded.js";
import { type CliResult, cliEnv, runCli } from "./cli-process.js";

const ID = /^[0-9a-z]+-[0-9a-f]+$/;

describe("devex checkpoint, checkpoints, diff, restore, fork (embedded core)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let home: string;
  let alice: NodeJS.ProcessEnv;
  let bob: NodeJS.ProcessEnv;
  /** alice's repl "ck", and its checkpoints: fresh from the template, then v1 (A) and v2 (B). */
  let repl: string;
  let fresh: string;
  let a: string;
  let b: string;

  before(async () => {
    // Quota 6: "ck", three forks, and room for a refused fork of three.
    e = await startEmbedded({ quota: 6, poolSize: 1 });
    home = await mkdtemp(join(tmpdir(), "devex-cli-checkpoints-"));
    const login = async (user: string) => {
      const token = (await issueApiToken(e.state, user, "cli")).secret;
      return cliEnv(join(home, user), { DEVEX_URL: e.core.url, DEVEX_TOKEN: token });
    };
    alice = await login("alice");
    bob = await login("bob");
  });
  after(async () => {
    await e?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** Runs the CLI as alice and requires success. */
  async function ok(args: string[], env = alice): Promise<CliResult> {
    const r = await runCli(args, env);
    assert.equal(r.code, 0, `devex ${args.join(" ")}: ${r.stderr}`);
    return r;
  }
  const sh = (script: string, id = repl) => ok(["exec", id, "--", "sh", "-c", script]);

  it("checkpoint prints the id (a stopped repl's stored files, a running one's current ones); checkpoints lists them newest first", async () => {
    repl = (await ok(["create", "--template", "node", "--name", "ck"])).stdout.trim();
    const first = await ok(["checkpoint", "ck"]);
    fresh = first.stdout.trim();
    assert.match(fresh, ID);
    assert.equal(first.stdout, `${fresh}\n`, "stdout is the id alone, for scripts");
    const [, files, bytes] = /\((\d+) files, (\d+) B\)/.exec(first.stderr)!;

    await sh(
      "printf 'v1\\n' > app.js; printf 'bye\\n' > gone.txt; printf '#!/bin/sh\\n' > run.sh; chmod 644 run.sh; printf 'a\\0b' > blob.bin",
    );
    const v1 = await ok(["checkpoint", repl, "-m", "first try", "--name", "v1"]);
    a = v1.stdout.trim();
    const stored = `${Number(files) + 4} files, ${Number(bytes) + 20} B`;
    assert.equal(v1.stderr, `checkpoint ${a} of ${repl} (${stored}); go back to it with: devex restore ${repl} ${a}\n`);

    await sh(
      "printf 'v2\\n' > app.js; rm gone.txt; printf 'new\\n' > new.txt; chmod 755 run.sh; printf 'a\\0c' > blob.bin",
    );
    b = (await ok(["checkpoint", "ck", "--message", "second"])).stdout.trim();
    assert.ok(fresh < a && a < b, "ids sort by time");

    const listed = await ok(["checkpoints", "ck"]);
    const lines = listed.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^ID +CREATED +KIND +NAME +FILES +SIZE +MESSAGE$/);
    const time = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";
    assert.match(lines[1], new RegExp(`^${b}  ${time}  manual\\s+${Number(files) + 4}\\s+\\d+ B  second$`));
    assert.match(
      lines[2],
      new RegExp(`^${a}  ${time}  manual  v1\\s+${Number(files) + 4}\\s+${Number(bytes) + 20} B  first try$`),
    );
    assert.match(lines[3], new RegExp(`^${fresh}  ${time}  manual\\s+${files}\\s+${bytes} B$`));
    assert.equal(lines.length, 4);
    assert.equal((await ok(["checkpoint", "list", repl])).stdout, listed.stdout, "checkpoint list is the same");

    const json = (await ok(["checkpoints", "ck", "--json"])).stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      json.map((c) => [c.checkpointId, c.name, c.message, c.files]),
      [
        [b, undefined, "second", String(Number(files) + 4)],
        [a, "v1", "first try", String(Number(files) + 4)],
        [fresh, undefined, undefined, files],
      ],
    );
  });

  it("diff summarizes what changed (A/D/M, sizes, modes); --patch adds the diffs, which git apply takes; paths limit it", async function () {
    requireProgram(this, "git");
    const summary = [
      "M  app.js    3 B → 3 B",
      "M  blob.bin  3 B → 3 B",
      "D  gone.txt  4 B",
      "A  new.txt   4 B",
      "M  run.sh    mode 644 → 755",
      `5 files changed from ${a} to ${b}: 1 added, 1 removed, 3 changed`,
      "",
    ].join("\n");
    assert.equal((await ok(["diff", "ck", a, b])).stdout, summary);

    const patched = await ok(["diff", "ck", a, b, "--patch"]);
    assert.ok(
      patched.stdout.startsWith(
        summary.replace("M  blob.bin  3 B → 3 B", "M  blob.bin  3 B → 3 B  (no patch: binary)").replace(/\n$/, "\n\n"),
      ),
      patched.stdout,
    );
    assert.match(patched.stdout, /\n--- a\/app\.js\n\+\+\+ b\/app\.js\n@@ -1,1 \+1,1 @@\n-v1\n\+v2\n/);
    // The whole output (summary and all) applies to A's files and gives B's.
    const work = await mkdtemp(join(home, "apply-"));
    await writeFile(join(work, "app.js"), "v1\n");
    await writeFile(join(work, "gone.txt"), "bye\n");
    await writeFile(join(work, "diff.patch"), patched.stdout);
    execFileSync("git", ["apply", "diff.patch"], { cwd: work });
    assert.equal(await readFile(join(work, "app.js"), "utf8"), "v2\n");
    assert.equal(await readFile(join(work, "new.txt"), "utf8"), "new\n");
    await assert.rejects(stat(join(work, "gone.txt")), { code: "ENOENT" });

    // Without a second checkpoint: to the running repl's current files (saved first), paths after --.
    await sh("printf 'v3\\n' > app.js");
    assert.equal(
      (await ok(["diff", "ck", a, "--", "./app.js", "new.txt/"])).stdout,
      `M  app.js   3 B → 3 B\nA  new.txt  4 B\n2 files changed from ${a} to the current files: 1 added, 1 changed\n`,
    );
    assert.equal(
      (await ok(["diff", "ck", a, b, "app.js", "--patch"])).stdout,
      `M  app.js  3 B → 3 B\n1 file changed from ${a} to ${b}: 1 changed\n\n` +
        "===================================================================\n" +
        "--- a/app.js\n+++ b/app.js\n@@ -1,1 +1,1 @@\n-v1\n+v2\n",
    );
    assert.equal(
      (await ok(["diff", "ck", b, "--", "gone.txt"])).stdout,
      `no changes from ${b} to the current files under gone.txt\n`,
    );
    const json = (await ok(["diff", repl, b, "--json", "--patch"])).stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(json, [
      {
        path: "app.js",
        kind: "FILE_CHANGE_KIND_CHANGED",
        sizeBefore: "3",
        sizeAfter: "3",
        modeBefore: 0o644,
        modeAfter: 0o644,
        patch: json[0].patch,
      },
    ]);
    assert.match(json[0].patch, /-v2\n\+v3\n/);

    // A path where the second checkpoint goes is taken for one: the error says where paths go.
    const misplaced = await runCli(["diff", "ck", a, "app.js"], alice);
    assert.equal(misplaced.code, 1);
    assert.equal(
      misplaced.stderr,
      `devex: repl ${repl} has no checkpoint "app.js" (see devex checkpoints ${repl}; if app.js is a path: devex diff ${repl} ${a} -- app.js)\n`,
    );
  });

  it("restore puts the files back (a running repl restarted) and prints the checkpoint that undoes it", async () => {
    const restored = await ok(["restore", "ck", a]);
    const undo = restored.stdout.trim();
    assert.match(undo, ID);
    assert.equal(
      restored.stderr,
      `restored ${repl} to checkpoint ${a} and restarted it (its terminals and programs ended); undo with: devex restore ${repl} ${undo}\n`,
    );
    assert.equal((await sh("cat app.js gone.txt; test -e new.txt || echo no new.txt")).stdout, "v1\nbye\nno new.txt\n");
    assert.equal((await ok(["diff", "ck", a])).stdout, `no changes from ${a} to the current files\n`);
    assert.match(
      (await ok(["checkpoints", "ck"])).stdout,
      new RegExp(`^${undo}  \\S+  before-restore  before restoring v1  `, "m"),
    );

    // Undone: the files as they were just before (v3, unsaved in any checkpoint of the user's).
    await ok(["restore", "ck", undo]);
    assert.equal((await sh("cat app.js new.txt")).stdout, "v3\nnew\n");

    // A stopped repl is restored in storage alone and stays stopped.
    await ok(["stop", "ck"]);
    const stopped = await ok(["restore", "ck", b]);
    assert.equal(
      stopped.stderr,
      `restored ${repl} to checkpoint ${b}; undo with: devex restore ${repl} ${stopped.stdout.trim()}\n`,
    );
    assert.match((await ok(["ls"])).stdout, new RegExp(`^${repl}\\s+ck\\s+node\\s+stopped\\s`, "m"));
    assert.equal((await ok(["diff", "ck", b])).stdout, `no changes from ${b} to the current files\n`);
  });

  it("fork makes stopped repls from a checkpoint or from the current files and prints their ids; past the quota none", async () => {
    const forked = await ok(["fork", "ck", a, "--name", "try", "--count", "2"]);
    const ids = forked.stdout.trimEnd().split("\n");
    assert.equal(ids.length, 2);
    assert.equal(
      forked.stderr,
      `forked ${repl} at checkpoint ${a} into 2 stopped repls ("try #1", "try #2"); start one with: devex start ${ids[0]}\n`,
    );
    const ls = (await ok(["ls"])).stdout;
    assert.match(ls, new RegExp(`^${ids[0]}\\s+try #1\\s+node\\s+stopped\\s`, "m"));
    assert.match(ls, new RegExp(`^${ids[1]}\\s+try #2\\s+node\\s+stopped\\s`, "m"));
    assert.equal((await sh("cat app.js gone.txt", ids[0])).stdout, "v1\nbye\n", "a fork has the checkpoint's files");
    await ok(["stop", ids[0]]);

    const now = await ok(["fork", repl]);
    const [fork] = now.stdout.trimEnd().split("\n");
    const [, made] = /at its current files \(checkpoint (\S+)\)/.exec(now.stderr) ?? [];
    assert.equal(
      now.stderr,
      `forked ${repl} at its current files (checkpoint ${made}) into a stopped repl ("ck fork"); start one with: devex start ${fork}\n`,
    );
    assert.match((await ok(["checkpoints", repl])).stdout, new RegExp(`^${made}  \\S+  fork +forked  `, "m"));
    assert.match(
      (await ok(["checkpoints", "ck fork"])).stdout,
      new RegExp(`^${made}  \\S+  forked-from +forked from ck  `, "m"),
      "a fork starts with its origin, under the parent's checkpoint id",
    );

    // Four repls of six: three more forks are refused, and none is made.
    const refused = await runCli(["fork", repl, "--count", "3"], alice);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      "devex: quota or limit reached: repl quota reached: at most 6 repls per user (DEVEX_REPL_QUOTA); delete one first\n",
    );
    assert.equal((await ok(["ls"])).stdout.trimEnd().split("\n").length, 1 + 4);
    const many = await runCli(["fork", repl, "--count", "21"], alice);
    assert.equal(many.code, 1);
    assert.match(many.stderr, /^devex: invalid argument: .*count.* 20\b.*\n$/);
  });

  it("checkpoint delete removes one; a missing checkpoint is named, with where to see the repl's", async () => {
    assert.equal((await ok(["checkpoint", "delete", repl, a])).stdout, `deleted checkpoint ${a} of ${repl}\n`);
    assert.doesNotMatch((await ok(["checkpoints", repl])).stdout, new RegExp(`^${a} `, "m"));
    const missing = `devex: repl ${repl} has no checkpoint "${a}" (see devex checkpoints ${repl})\n`;
    for (const args of [
      ["checkpoint", "delete", repl, a],
      ["restore", repl, a],
      ["fork", repl, a],
      ["diff", repl, a],
      ["diff", repl, a, b],
    ]) {
      const r = await runCli(args, alice);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(r.stderr, missing, args.join(" "));
    }
    // As the second checkpoint of a diff it may have been meant as a path: the error says how to give one.
    const second = await runCli(["diff", repl, b, a], alice);
    assert.equal(second.stderr, missing.replace(/\)\n$/, `; if ${a} is a path: devex diff ${repl} ${b} -- ${a})\n`));
  });

  it("usage errors exit 2 with the usage text; another user's repl is not found", async () => {
    const usage: Array<[string[], string | RegExp]> = [
      [["checkpoint"], "expected a repl id or name"],
      [["checkpoint", repl, "--bogus"], /'--bogus'/],
      [["checkpoint", repl, "first", "try"], 'checkpoint takes one <repl>; quote a message: -m "first try"'],
      [["checkpoints"], "expected a repl id or name"],
      [["checkpoint", "list"], "expected a repl id or name"],
      [["checkpoint", "delete", repl], "checkpoint delete needs <repl> <checkpoint-id>"],
      [["restore", repl], "restore needs <repl> <checkpoint-id> (see devex checkpoints)"],
      [["restore", repl, a, b], "restore needs <repl> <checkpoint-id> (see devex checkpoints)"],
      [["fork"], "expected a repl id or name"],
      [["fork", repl, a, b], "fork takes a <repl> and at most one <checkpoint-id>"],
      [["fork", repl, "--count", "0"], "--count must be a whole number of repls from 1"],
      [["fork", repl, "--count", "two"], "--count must be a whole number of repls from 1"],
      [["diff", repl], "diff needs <repl> <checkpoint-id> (see devex checkpoints)"],
      [
        ["diff", repl, b, "--", "../outside"],
        `"../outside": diff paths are relative to the repl's workspace, inside it`,
      ],
      [["diff", repl, b, "--", "/etc"], `"/etc": diff paths are relative to the repl's workspace, inside it`],
    ];
    // Nothing here reaches a repl: all at once.
    const results = await Promise.all(usage.map(([args]) => runCli(args, alice)));
    for (const [i, [args, message]] of usage.entries()) {
      const r = results[i];
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const [first, rest] = [r.stderr.slice(0, r.stderr.indexOf("\n")), r.stderr.slice(r.stderr.indexOf("\n"))];
      if (typeof message === "string") assert.equal(first, `devex: ${message}`, args.join(" "));
      else assert.match(first, message, args.join(" "));
      assert.match(rest, /^\n\nusage: devex/);
    }

    const others = [
      ["checkpoint", repl],
      ["checkpoints", repl],
      ["checkpoint", "delete", repl, b],
      ["restore", repl, b],
      ["fork", repl],
      ["diff", repl, b],
    ];
    for (const [i, r] of (await Promise.all(others.map((args) => runCli(args, bob)))).entries()) {
      assert.equal(r.code, 1, others[i].join(" "));
      assert.equal(r.stderr, `devex: no repl ${repl} (see devex ls)\n`, others[i].join(" "));
    }
    assert.match((await ok(["checkpoints", repl])).stdout, new RegExp(`^${b} `, "m"), "bob changed nothing");
    assert.match((await ok(["ls"], bob)).stdout, /^ID\s+NAME/);
    assert.equal((await ok(["ls"], bob)).stdout.trimEnd().split("\n").length, 1, "bob forked nothing");
  });
});
