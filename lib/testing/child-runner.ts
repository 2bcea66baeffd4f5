/**
 * A runner as its own process (its bundle `dist/runner/main.mjs`, as shipped, started by path and
 * configured by env) on a random port over a scratch workspace, with a fresh signing key: for tests and benches
 * that measure the process (RSS, CPU) or need it apart from theirs.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Audience, USER_SCOPES } from "../contracts/runner-access.js";
import { runnerNodeFlags } from "../contracts/runner-node-flags.mjs";
import { projectRoot } from "../kit/project-root.js";
import { createTokenSigner, generateSigningKey, type TokenClaims } from "../kit/tokens.js";

const runnerMain = path.join(projectRoot, "dist/runner/main.mjs");
const replId = "test-repl";

export interface ChildRunner {
  url: string;
  pid: number;
  /** A valid user token for its repl with every scope. */
  token: string;
  /** A token for its repl: every scope for user-1 unless `claims` say otherwise. */
  mint(claims?: Partial<Omit<TokenClaims, "iat" | "exp" | "jti">>, ttlSeconds?: number, now?: number): string;
  /** Resident set size of the runner process, in bytes. */
  rss(): number;
  close(): Promise<void>;
}

export async function startChildRunner(env: Record<string, string> = {}): Promise<ChildRunner> {
  const dir = await mkdtemp(path.join(tmpdir(), "devex-runner-child-"));
  const key = generateSigningKey();
  const signer = createTokenSigner(key.privateKeyPem);
  const child = spawn(process.execPath, [...runnerNodeFlags, runnerMain], {
    env: {
      ...process.env,
      DEVEX_RUNNER_WORKSPACE: path.join(dir, "ws"),
      DEVEX_RUNNER_PORT: "0",
      DEVEX_REPL_ID: replId,
      DEVEX_TOKEN_PUBLIC_KEY: key.publicKeyPem,
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /listening on (http:\/\/[^"\s]+)/.exec(buf);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`runner exited with ${code} before listening:\n${buf}`)));
  });
  child.stdout.resume();
  const mint: ChildRunner["mint"] = (claims = {}, ttl = 600, now) =>
    signer.mint({ aud: Audience.runner, sub: "user-1", repl: replId, scope: USER_SCOPES, ...claims }, ttl, now);
  return {
    url,
    pid: child.pid!,
    token: mint(),
    mint,
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async close() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
