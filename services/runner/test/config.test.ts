import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createTokenVerifier } from "../../../lib/kit/tokens.js";
import { loadRunnerConfig } from "../src/config.js";
import { isolationOf } from "../src/services/status-service.js";

const base = { DEVEX_RUNNER_WORKSPACE: "/tmp/ws", DEVEX_REPL_ID: "my-repl", DEVEX_TOKEN_PUBLIC_KEY: "PEM" };

describe("runner config and cli", function () {
  this.timeout(30_000);

  it("applies defaults and parses durations and limits", () => {
    const c = loadRunnerConfig({ ...base, DEVEX_IDLE_TIMEOUT: "90s", DEVEX_RUNNER_MAX_TERMINALS: "4" });
    assert.equal(c.port, 8090);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.idleTimeoutMs, 90_000);
    assert.equal(c.limits.maxTerminals, 4);
    assert.equal(c.limits.maxFileRead, 16 * 1024 * 1024);
    assert.equal(c.core, undefined);
  });

  it("names every missing or bad variable", () => {
    assert.throws(
      () => loadRunnerConfig({ DEVEX_IDLE_TIMEOUT: "soon" }),
      (e: Error) =>
        /DEVEX_RUNNER_WORKSPACE/.test(e.message) &&
        /DEVEX_REPL_ID/.test(e.message) &&
        /DEVEX_IDLE_TIMEOUT/.test(e.message),
    );
    assert.throws(() => loadRunnerConfig({ ...base, DEVEX_TOKEN_PUBLIC_KEY: undefined }), /DEVEX_TOKEN_PUBLIC_KEY/);
    assert.throws(() => loadRunnerConfig({ ...base, DEVEX_CORE_URL: "http://core:8080" }), /go together/);
  });

  it("keygen writes a key pair and mint issues a token the runner accepts", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "devex-cli-"));
    try {
      keygenAndMint(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  function keygenAndMint(dir: string) {
    const cli = path.resolve(import.meta.dirname, "../src/cli.ts");
    execFileSync(process.execPath, ["--import", "tsx", cli, "keygen", "--out", dir]);
    const token = execFileSync(process.execPath, [
      "--import",
      "tsx",
      cli,
      "mint",
      "--key",
      path.join(dir, "token-signing.pem"),
      "--repl",
      "my-repl",
      "--user",
      "me",
      "--ttl",
      "1h",
    ])
      .toString()
      .trim();
    const verifier = createTokenVerifier(readFileSync(path.join(dir, "token-signing.pub.pem"), "utf8"));
    const claims = verifier.verify(token, { aud: "runner", repl: "my-repl" });
    assert.equal(claims.sub, "me");
    assert.deepEqual(claims.scope, ["files", "terminals", "exec", "preview"]);
    assert.ok(claims.exp - claims.iat === 3600);
  }

  it("reports the isolation the command prefix provides", () => {
    assert.equal(isolationOf([]), "none");
    assert.equal(
      isolationOf(["prlimit", "--nproc=256", "--", "/usr/bin/bwrap", "--die-with-parent", "--"]),
      "bubblewrap",
    );
    assert.equal(isolationOf(["nsjail", "--"]), "nsjail");
  });
});
