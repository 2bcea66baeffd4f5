import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ConfigError, env, loadConfig, parseDuration } from "./config.js";
import { isPlatformCookie, readCookie, withoutCookies } from "./cookies.js";
import { type DomainError, failedPrecondition, toConnectError } from "./errors.js";
import { createLogger, redactUrl } from "./log.js";
import { isAlive, killGroup } from "./pids.js";
import { replaceFile } from "./replace-file.js";
import { bearerToken, createTokenSigner, createTokenVerifier, generateSigningKey } from "./tokens.js";
import * as z from "./zod.js";

describe("config", () => {
  const schema = z.object({
    DEVEX_PORT: env.port(8080),
    DEVEX_IDLE_TIMEOUT: env.duration("4m"),
    DEVEX_SECURE: env.bool(false),
    DEVEX_PUBLIC_URL: env.url(),
  });

  it("applies defaults and parses values", () => {
    const c = loadConfig(schema, { DEVEX_PUBLIC_URL: "http://localhost:8080", DEVEX_SECURE: "yes" });
    assert.deepEqual(c, {
      DEVEX_PORT: 8080,
      DEVEX_IDLE_TIMEOUT: 240_000,
      DEVEX_SECURE: true,
      DEVEX_PUBLIC_URL: "http://localhost:8080",
    });
  });

  it("lists every bad or missing variable in one error", () => {
    assert.throws(
      () => loadConfig(schema, { DEVEX_PORT: "99999", DEVEX_IDLE_TIMEOUT: "soon" }),
      (e: ConfigError) => {
        assert.equal(e.problems.length, 3);
        assert.match(e.message, /DEVEX_PORT/);
        assert.match(e.message, /DEVEX_IDLE_TIMEOUT: "soon" is not a duration/);
        assert.match(e.message, /DEVEX_PUBLIC_URL: required \(not set\)/);
        return true;
      },
    );
  });

  it("says a number is not a whole number, whatever the text", () => {
    for (const port of ["abc", "1.5", "8o80"]) {
      assert.throws(
        () => loadConfig(schema, { DEVEX_PORT: port, DEVEX_PUBLIC_URL: "http://localhost" }),
        (e: ConfigError) => assert.deepEqual(e.problems, ["DEVEX_PORT: must be a whole number"]) ?? true,
      );
    }
  });

  it("parses durations", () => {
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("100"), 100);
    assert.equal(parseDuration("-1s"), undefined);
  });
});

describe("tokens", () => {
  const keys = generateSigningKey();
  const signer = createTokenSigner(keys.privateKeyPem);
  const verifier = createTokenVerifier(keys.publicKeyPem);
  const claims = { aud: "runner" as const, sub: "alice", repl: "r1", scope: ["files"] };

  it("verifies a token for its repl and audience", () => {
    const token = signer.mint(claims, 60);
    const got = verifier.verify(token, { aud: "runner", repl: "r1" });
    assert.equal(got.sub, "alice");
    assert.equal(got.exp - got.iat, 60);
    assert.equal(signer.publicKeyPem, keys.publicKeyPem);
  });

  it("refuses expired, forged, foreign-audience and other-repl tokens with the right kinds", () => {
    const kind = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as DomainError).kind;
      }
      return "accepted";
    };
    const token = signer.mint(claims, 60);
    assert.equal(
      kind(() => verifier.verify(token, { aud: "runner", repl: "r2" })),
      "permission-denied",
    );
    assert.equal(
      kind(() => verifier.verify(token, { aud: "runner-admin", repl: "r1" })),
      "unauthenticated",
    );
    const expired = signer.mint(claims, 60, Date.now() - 120_000);
    assert.equal(
      kind(() => verifier.verify(expired, { aud: "runner", repl: "r1" })),
      "unauthenticated",
    );
    const [h, p, s] = token.split(".");
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, repl: "r2", exp: 9e9 })).toString("base64url")}.${s}`;
    assert.equal(
      kind(() => verifier.verify(tampered, { aud: "runner", repl: "r2" })),
      "unauthenticated",
    );
    const otherKey = createTokenSigner(generateSigningKey().privateKeyPem).mint(claims, 60);
    assert.equal(
      kind(() => verifier.verify(otherKey, { aud: "runner", repl: "r1" })),
      "unauthenticated",
    );
    assert.equal(
      kind(() => verifier.verify(`${h}.${p}`, { aud: "runner" })),
      "unauthenticated",
    );
    assert.equal(
      kind(() => verifier.verify("garbage", { aud: "runner" })),
      "unauthenticated",
    );
  });

  it("extracts bearer tokens", () => {
    assert.equal(bearerToken("Bearer abc.def"), "abc.def");
    assert.equal(bearerToken("bearer  xyz "), "xyz");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken(null), undefined);
  });
});

describe("errors", () => {
  it("keeps domain messages, hides everything else behind a reference", () => {
    const domain = toConnectError(failedPrecondition("file changed since it was read"));
    assert.equal(domain.code, Code.FailedPrecondition);
    assert.equal(domain.rawMessage, "file changed since it was read");
    const hidden = toConnectError(new Error("ECONNREFUSED 127.0.0.1:6379"));
    assert.equal(hidden.code, Code.Internal);
    assert.match(hidden.rawMessage, /^internal error \(ref [0-9a-f]{8}\)$/);
    const passthrough = toConnectError(new ConnectError("deadline", Code.DeadlineExceeded));
    assert.equal(passthrough.code, Code.DeadlineExceeded);
  });
});

describe("logging", () => {
  it("redacts secrets in fields and URLs", () => {
    const lines: string[] = [];
    const log = createLogger("t", {
      destination: new Writable({
        write(c, _e, cb) {
          lines.push(c.toString());
          cb();
        },
      }),
    });
    log.info({ headers: { authorization: "Bearer s3cr3t", cookie: "sid=s3cr3t" }, token: "s3cr3t" }, "request");
    log.info({ url: redactUrl("/ws/terminals/t1?replay=1&token=s3cr3t") }, "upgrade");
    const text = lines.join("");
    assert.doesNotMatch(text, /s3cr3t/);
    assert.match(text, /replay=1&token=\[redacted\]/);
  });
});

describe("cookies", () => {
  it("reads one cookie, URI-decoded; a malformed value reads as absent", () => {
    assert.equal(readCookie("a=1; devex_session=x%20y; b=2", "devex_session"), "x y");
    assert.equal(readCookie("a=1", "devex_session"), undefined);
    assert.equal(readCookie("devex_session=%E0%A4%A", "devex_session"), undefined);
    assert.equal(readCookie(undefined, "a"), undefined);
  });

  it("drops the selected cookies and keeps the rest in order", () => {
    const header = "devex_session=s; app=1;devex_preview=t ; x=a=b; flag";
    assert.equal(withoutCookies(header, isPlatformCookie), "app=1; x=a=b; flag");
    assert.equal(withoutCookies("devex_session=s", isPlatformCookie), undefined);
    assert.equal(withoutCookies(undefined, isPlatformCookie), undefined);
    assert.equal(
      withoutCookies("devex_session=s; app=1", (n) => n === "app"),
      "devex_session=s",
    );
  });
});

describe("replaceFile", () => {
  it("never shows a reader a half-written file, even with writers racing, and leaves no temporary file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "devex-replace-"));
    const file = join(dir, "state.json");
    const big = (n: number) => JSON.stringify({ n, fill: "x".repeat(2 * 1024 * 1024) });
    await replaceFile(file, big(0));
    let writing = true;
    const writers = [1, 2].map(async (w) => {
      for (let i = 0; i < 20; i++) await replaceFile(file, big(w * 100 + i));
    });
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        JSON.parse(await readFile(file, "utf8")); // throws on a partial file
        reads++;
      }
    })();
    await Promise.all(writers);
    writing = false;
    await reader;
    assert.ok(reads > 0);
    assert.deepEqual(await readdir(dir), ["state.json"]);
    await rm(dir, { recursive: true, force: true });
  });
});

describe("pids", () => {
  it("a pid of 0 or less is no process, and no group is signalled for it", () => {
    // kill(0, sig) would signal this very process group: mocha and whatever ran it.
    for (const pid of [0, -1, Number.NaN]) {
      assert.equal(isAlive(pid), false, `isAlive(${pid})`);
      assert.equal(killGroup(pid, 0), false, `killGroup(${pid})`);
    }
    assert.equal(isAlive(process.pid), true);
  });
});
