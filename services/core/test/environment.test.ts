/**
 * A repl's environment variables and secrets through core's API, on the embedded store and a real
 * Redis: set, list, replace and delete; a secret's value is never returned (ListEnvironmentVariables,
 * GetRepl, ListRepls) and never stored in the clear (the embedded state file and every Redis value,
 * read with redis-cli); its runner's feed (WatchEnvironment) gets the values, changes within a
 * second; bad names, reserved names, oversized values and another user's repl are refused.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { Audience } from "../../../lib/contracts/runner-access.js";
import { createLogger } from "../../../lib/kit/log.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { startRedis, type TestRedis } from "../../../lib/testing/redis.js";
import { createSecretBox, parseSecretsKey } from "../src/repl/secret-box.js";
import { createRedisStore } from "../src/state/redis.js";
import type { StateStore } from "../src/state/store.js";
import { type Clients, startTestCore, type TestCore } from "./harness.js";

const SECRET = "hunter2-very-secret-value";
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return "OK";
  } catch (e) {
    return Code[ConnectError.from(e).code];
  }
};

/** Every value the store holds, as text: the embedded state's files, or each Redis key through redis-cli. */
type RawDump = () => Promise<string>;

for (const kind of ["embedded", "redis"] as const) {
  describe(`repl environment variables and secrets (${kind} store)`, () => {
    let t: TestCore;
    let redis: TestRedis | undefined;
    let state: StateStore | undefined;
    let alice: Clients;
    let replId: string;
    let raw: RawDump;

    before(async function () {
      if (kind === "redis") {
        const program = requireProgram(this, "redis-server");
        const cli = requireProgram(this, "redis-cli");
        redis = await startRedis(program);
        state = await createRedisStore({ url: redis.url });
        const port = String(redis.port);
        raw = async () => {
          const run = (...args: string[]) => execFileSync(cli, ["-p", port, ...args], { encoding: "utf8" });
          const keys = run("--scan").split("\n").filter(Boolean);
          // Every key, whatever its type: the audit log's streams too (a leak through its details lands there).
          const readers: Record<string, (k: string) => string[]> = {
            hash: (k) => ["HGETALL", k],
            string: (k) => ["GET", k],
            set: (k) => ["SMEMBERS", k],
            zset: (k) => ["ZRANGE", k, "0", "-1"],
            list: (k) => ["LRANGE", k, "0", "-1"],
            stream: (k) => ["XRANGE", k, "-", "+"],
          };
          return keys
            .map((k) => {
              const type = run("TYPE", k).trim();
              if (!readers[type]) throw new Error(`the dump cannot read ${k}, a ${type}`);
              return `${k} ${run(...readers[type](k))}`;
            })
            .join("\n");
        };
      }
      t = await startTestCore({ state, quota: 10 });
      if (kind === "embedded") {
        const dir = join(t.dir, "state");
        raw = async () =>
          (await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), "utf8")))).join("\n");
      }
      alice = t.clients({ bearer: await t.token("alice") });
      replId = (await alice.repl.createRepl({ name: "env", template: "node" })).repl!.replId;
    });
    after(async () => {
      await t?.close();
      await state?.close();
      await redis?.dispose();
    });

    it("sets, lists, replaces and deletes; a secret is listed by name only, anywhere it could be read", async () => {
      await alice.repl.setEnvironmentVariable({ replId, name: "MODE", value: "dev" });
      const set = await alice.repl.setEnvironmentVariable({ replId, name: "API_KEY", value: SECRET, secret: true });
      assert.deepEqual(
        set.variables.map((v) => [v.name, v.value, v.secret]),
        [
          ["API_KEY", "", true],
          ["MODE", "dev", false],
        ],
      );
      const listed = await alice.repl.listEnvironmentVariables({ replId });
      assert.deepEqual(
        listed.variables.map((v) => v.name),
        ["API_KEY", "MODE"],
      );
      assert.ok(listed.variables.every((v) => v.updateTime));
      const everything = JSON.stringify(
        [listed, await alice.repl.getRepl({ replId }), await alice.repl.listRepls({})],
        (_k, v) => (typeof v === "bigint" ? String(v) : v),
      );
      assert.ok(!everything.includes(SECRET), "no read API returns the secret");
      const stored = await raw();
      assert.ok(stored.includes("API_KEY") && stored.includes("MODE"), "the dump holds the repl's variables");
      if (kind === "embedded") {
        const { mode } = await stat(join(t.dir, "state", "state.json"));
        assert.equal(mode & 0o777, 0o600, "the state file is core's user's only");
      }
      for (const form of [SECRET, Buffer.from(SECRET).toString("base64"), Buffer.from(SECRET).toString("base64url")])
        assert.ok(!stored.includes(form), "the store holds the secret sealed, never in the clear (or merely encoded)");

      const replaced = await alice.repl.setEnvironmentVariable({ replId, name: "MODE", value: "prod" });
      assert.equal(replaced.variables.find((v) => v.name === "MODE")?.value, "prod");
      const deleted = await alice.repl.deleteEnvironmentVariable({ replId, name: "MODE" });
      assert.deepEqual(
        deleted.variables.map((v) => v.name),
        ["API_KEY"],
      );
      assert.equal((await alice.repl.deleteEnvironmentVariable({ replId, name: "MODE" })).variables.length, 1);
    });

    it("the repl's runner gets the values, secrets opened, and each change within a second; no other runner does", async () => {
      await alice.repl.startRepl({ replId });
      const { runnerId } = (await t.state.getActiveSession(replId))!;
      const controlFor = (runner: string, repl = replId) =>
        t.clients({ bearer: t.signer.mint({ aud: Audience.runnerControl, sub: runner, repl, scope: [] }, 60) }).control;
      const drain = async (it: AsyncIterable<unknown>) => {
        for await (const _ of it);
      };
      const abort = new AbortController();
      const feed = controlFor(runnerId)
        .watchEnvironment({ replId, runnerId }, { signal: abort.signal })
        [Symbol.asyncIterator]();
      try {
        const first = (await feed.next()).value!;
        assert.equal(first.variables.API_KEY, SECRET);
        const started = Date.now();
        await alice.repl.setEnvironmentVariable({ replId, name: "LATER", value: "x=1 y" });
        const next = (await feed.next()).value!;
        assert.deepEqual({ ...next.variables }, { API_KEY: SECRET, LATER: "x=1 y" });
        assert.ok(Date.now() - started < 1000, "in-process changes arrive at once");
        // A runner that no longer serves the repl (its credential outlives it) gets nothing.
        const old = controlFor("run-old").watchEnvironment({ replId, runnerId: "run-old" });
        assert.equal(await codeOf(drain(old)), "PermissionDenied");
        // Another repl's runner cannot follow this repl.
        const other = controlFor("run-x", "r000000000000").watchEnvironment({ replId, runnerId: "run-x" });
        assert.equal(await codeOf(drain(other)), "PermissionDenied");
        // Stopped, the repl's own runner's feed ends too (at the next change or poll).
        await alice.repl.stopRepl({ replId });
        assert.equal(
          await codeOf(
            (async () => {
              while (!(await feed.next()).done);
            })(),
          ),
          "PermissionDenied",
        );
      } finally {
        abort.abort();
      }
    });

    it("refuses bad and reserved names, NULs, oversized values, too many variables and another user's repl", async () => {
      const refuse = async (req: { name: string; value?: string }, code: string, message?: RegExp) => {
        const err = await alice.repl.setEnvironmentVariable({ replId, value: "", ...req }).then(
          () => undefined,
          (e) => ConnectError.from(e),
        );
        assert.equal(err && Code[err.code], code, req.name);
        if (message) assert.match(err!.rawMessage, message);
      };
      await refuse({ name: "1ABC" }, "InvalidArgument");
      await refuse({ name: "A-B" }, "InvalidArgument");
      await refuse({ name: "HOME" }, "InvalidArgument", /HOME is set by the repl itself/);
      await refuse({ name: "DEVEX_TOKEN" }, "InvalidArgument", /DEVEX_/);
      await refuse({ name: "NUL", value: "a\0b" }, "InvalidArgument");
      await refuse({ name: "BIG", value: "x".repeat(32 * 1024 + 1) }, "InvalidArgument");
      const bob = t.clients({ bearer: await t.token("bob") });
      assert.equal(await codeOf(bob.repl.setEnvironmentVariable({ replId, name: "X", value: "1" })), "NotFound");
      assert.equal(await codeOf(bob.repl.listEnvironmentVariables({ replId })), "NotFound");
      const many = (await alice.repl.createRepl({ name: "many", template: "node" })).repl!.replId;
      for (let i = 0; i < 100; i++)
        await alice.repl.setEnvironmentVariable({ replId: many, name: `V${i}`, value: "1" });
      const over = await codeOf(alice.repl.setEnvironmentVariable({ replId: many, name: "V100", value: "1" }));
      assert.equal(over, "ResourceExhausted");
      assert.equal((await alice.repl.listEnvironmentVariables({ replId: many })).variables.length, 100);
    });
  });
}

describe("secret box", () => {
  const key = parseSecretsKey(Buffer.alloc(32, 7).toString("base64"));
  const box = createSecretBox(key);

  it("opens what it sealed, for the same repl and name only, and under the same key only", () => {
    const sealed = box.seal(SECRET, "r1\0API_KEY");
    assert.ok(!sealed.includes(SECRET));
    assert.notEqual(box.seal(SECRET, "r1\0API_KEY"), sealed, "a fresh nonce each time");
    assert.equal(box.open(sealed, "r1\0API_KEY"), SECRET);
    assert.throws(() => box.open(sealed, "r2\0API_KEY"));
    assert.throws(() => box.open(sealed, "r1\0OTHER"));
    assert.throws(() => createSecretBox(parseSecretsKey("a".repeat(64))).open(sealed, "r1\0API_KEY"));
  });

  it("takes the key as hex, base64 or base64url, 32 bytes only", () => {
    for (const enc of ["hex", "base64", "base64url"] as const)
      assert.deepEqual(parseSecretsKey(key.toString(enc)), key);
    assert.throws(() => parseSecretsKey(Buffer.alloc(16).toString("base64")), /32 bytes/);
    assert.throws(() => parseSecretsKey("a passphrase that happens to be long enough!"), /32 bytes/);
    assert.throws(() => parseSecretsKey(`${key.toString("base64")}junk`), /32 bytes/);
  });

  it("refuses tampered, truncated or malformed sealed values", () => {
    const sealed = box.seal(SECRET, "c");
    const [v, nonce, body, tag] = sealed.split(".");
    const flip = (b64: string) => {
      const b = Buffer.from(b64, "base64url");
      b[0] ^= 1;
      return b.toString("base64url");
    };
    for (const bad of [
      [v, nonce, flip(body), tag],
      [v, nonce, body, flip(tag)],
      [v, nonce, body, Buffer.from(tag, "base64url").subarray(0, 4).toString("base64url")],
      [v, Buffer.alloc(8).toString("base64url"), body, tag],
      ["v2", nonce, body, tag],
      [v, nonce, body],
      [v, nonce, body, tag, "extra"],
    ]) {
      assert.throws(() => box.open(bad.join("."), "c"), Error, bad.join("."));
    }
  });

  it("a secret that no longer opens (another key) is left out of the runner's environment, by name in the log", async () => {
    const lines: string[] = [];
    const log = createLogger("core", { level: "warn", destination: { write: (l: string) => lines.push(l) } });
    const t = await startTestCore({ secretsKey: Buffer.alloc(32, 1), log });
    try {
      const c = t.clients({ bearer: await t.token("alice") });
      const replId = (await c.repl.createRepl({ name: "k", template: "node" })).repl!.replId;
      await c.repl.setEnvironmentVariable({ replId, name: "S", value: SECRET, secret: true });
      await c.repl.setEnvironmentVariable({ replId, name: "P", value: "plain" });
      const r = (await t.state.getRepl(replId))!;
      // A core with another key (a replica configured differently) over the same record.
      const { plainEnvironment } = await import("../src/repl/environment.js");
      const deps = { secrets: createSecretBox(Buffer.alloc(32, 2)), log } as never;
      assert.deepEqual(plainEnvironment(deps, r), { P: "plain" });
      assert.ok(lines.some((l) => l.includes('"name":"S"') && l.includes("does not open")));
      assert.ok(!lines.join("").includes(SECRET));
    } finally {
      await t.close();
    }
  });
});
