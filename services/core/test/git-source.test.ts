/** What CreateRepl accepts as a repository (repl/git-source.ts), and git's progress lines (repl/git-progress.ts). */
import assert from "node:assert/strict";
import { parseGitProgress } from "../src/repl/git-progress.js";
import { checkGitSource } from "../src/repl/git-source.js";

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

  it("refuses other schemes, credentials in the URL, and short commit ids", () => {
    const refused: Array<[string, string, RegExp]> = [
      ["git://github.com/a/b.git", "", /must start with https/],
      ["ssh://git@github.com/a/b.git", "", /must start with https/],
      ["file:///srv/repo.git", "", /must start with https/],
      ["ext::sh -c id", "", /must start with https|not a URL/],
      ["github.com/a/b", "", /not a URL/],
      ["https://token@github.com/a/b.git", "", /user name or password/],
      ["https://u:p@github.com/a/b.git", "", /user name or password/],
      ["https://github.com/a/b.git", "deadbee", /full 40-character id/],
    ];
    for (const [url, ref, message] of refused)
      assert.throws(() => checkGitSource(source(url, ref), false), message, url);
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
