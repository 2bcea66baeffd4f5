/**
 * Which repository URLs are on the GitHub host, so that the owner's grant may be used for them
 * (repl/github.ts onGitHub), after CreateRepl's own URL checks (git-source.ts) as core applies them.
 */
import assert from "node:assert/strict";
import { checkGitSource } from "../src/repl/git-source.js";
import { GITHUB_DOT_COM, onGitHub } from "../src/repl/github.js";

const onHost = (url: string) => {
  const checked = checkGitSource({ url, ref: "", fullHistory: false }, true);
  return onGitHub(GITHUB_DOT_COM, checked.url);
};

describe("repositories on the GitHub host", () => {
  it("takes owner/name under the host, with or without .git or a trailing slash", () => {
    assert.equal(onHost("https://github.com/octo/app"), "octo/app");
    assert.equal(onHost("https://github.com/octo/app.git"), "octo/app.git");
    assert.equal(onHost("https://github.com/octo/app/"), "octo/app");
    assert.equal(onHost("https://GitHub.com/octo/app"), "octo/app", "hosts are case-insensitive");
    assert.equal(onHost("https://github.com/octo/a/../app"), "octo/app", "as the URL resolves");
  });

  it("refuses anything else: other hosts and ports, look-alikes, deeper paths, queries", () => {
    for (const url of [
      "https://github.com.evil.test/octo/app",
      "https://evil.test/github.com/octo/app",
      "https://github.com:8443/octo/app",
      "http://github.com/octo/app",
      "https://github.com/octo",
      "https://github.com/octo/app/info/refs",
      "https://github.com/octo/app?x=1",
      "https://github.com/octo/app#frag",
      "https://github.com/octo/%2e%2e",
      "https://github.com/octo/a%2fb",
    ]) {
      assert.equal(onHost(url), undefined, url);
    }
  });
});
