/**
 * What CreateRepl accepts as a repository (repl/git-source.ts), git's progress lines
 * (repl/git-progress.ts), and a clone left behind by a core that went away (repl/start.ts).
 */
import assert from "node:assert/strict";
import { Code, type ConnectError } from "@connectrpc/connect";
import { parseGitProgress } from "../src/repl/git-progress.js";
import { checkGitSource } from "../src/repl/git-source.js";
import type { ReplRecord } from "../src/state/store.js";
import { startTestCore, type TestCore } from "./harness.js";

const source = (url: string, ref = "") => ({ url, ref, fullHistory: false });

describe("git sources", () => {
  it("takes https URLs, and http ones only where the operator allows them", () => {
    assert.equal(checkGitSource(source("https://github.com/a/b.git"), false).url, "https://github.com/a/b.git");
    assert.throws(
      () => checkGitSource(source("http://git.internal/a.git"), false),
      /must start with https:\/\/, not http:/,
    );
    assert.equal(checkGitSource(source("http://git.internal/a.git"), true).url, "http://git.internal/a.git");
  });

  it("refuses other schemes and credentials in the URL", () => {
    const refused: Array<[string, string, RegExp]> = [
      ["git://github.com/a/b.git", "", /must start with https/],
      ["ssh://git@github.com/a/b.git", "", /must start with https/],
      ["file:///srv/repo.git", "", /must start with https/],
      ["ext::sh -c id", "", /must start with https|not a URL/],
      ["github.com/a/b", "", /not a URL/],
      ["https://token@github.com/a/b.git", "", /user name or password/],
      ["https://u:p@github.com/a/b.git", "", /user name or password/],
    ];
    for (const [url, ref, message] of refused)
      assert.throws(() => checkGitSource(source(url, ref), false), message, url);
  });

  it("takes a short hex name as a branch or tag, and a full commit id in any case", () => {
    assert.equal(checkGitSource(source("https://github.com/a/b.git", "20240101"), false).ref, "20240101");
    const upper = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";
    assert.equal(checkGitSource(source("https://github.com/a/b.git", upper), false).ref, upper.toLowerCase());
  });

  it("reads the latest 'Receiving objects' report, in any unit", () => {
    assert.equal(parseGitProgress("Cloning into '.'...\n"), undefined);
    const text =
      "remote: Enumerating objects: 10, done.\nReceiving objects:  10% (1/10)\rReceiving objects:  50% (5/10), 1.50 MiB | 1.00 MiB/s\rReceiving objects:  90% (9/10), 2.25 GiB | 3 MiB/s\r";
    assert.deepEqual(parseGitProgress(text), { objects: 9, objectsTotal: 10, bytes: Math.round(2.25 * 2 ** 30) });
    assert.deepEqual(parseGitProgress("Receiving objects: 100% (3/3), 412 bytes | 412.00 KiB/s, done.\n"), {
      objects: 3,
      objectsTotal: 3,
      bytes: 412,
    });
  });
});

describe("a clone cut off by a core that went away", () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore({ git: { timeoutMs: 60_000 } });
  });
  after(() => t?.close());

  it("is deleted when someone starts it past the clone's deadline; before that, starting it waits for the clone", async () => {
    const alice = t.clients({ bearer: await t.token("alice") });
    const record = (startTime: number): ReplRecord => ({
      replId: `r${startTime.toString(16).slice(-12).padStart(12, "0")}`,
      name: "cut",
      template: "",
      owner: "alice",
      status: "stopped",
      createTime: startTime,
      updateTime: startTime,
      persistTime: 0,
      lastError: "",
      git: { url: "https://example.invalid/r.git", ref: "", fullHistory: false, status: "cloning", startTime },
    });
    const recent = record(Date.now());
    const cut = record(Date.now() - 10 * 60_000);
    await t.state.createRepl(recent, 10);
    await t.state.createRepl(cut, 10);
    await assert.rejects(alice.repl.startRepl({ replId: recent.replId }), (e: ConnectError) => {
      assert.equal(e.code, Code.FailedPrecondition);
      assert.match(e.rawMessage, /is being cloned from https:\/\/example\.invalid\/r\.git/);
      return true;
    });
    await assert.rejects(alice.repl.stopRepl({ replId: recent.replId }), /DeleteRepl cancels the clone/);
    await assert.rejects(alice.repl.startRepl({ replId: cut.replId }), (e: ConnectError) => {
      assert.equal(e.code, Code.FailedPrecondition);
      assert.match(e.rawMessage, /was deleted: clone failed: it was cut off/);
      return true;
    });
    assert.equal(await t.state.getRepl(cut.replId), undefined);
    assert.ok(await t.state.getRepl(recent.replId));
  });
});
