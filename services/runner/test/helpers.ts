/**
 * Test helpers: a runner on a random port over a temp workspace with a fresh signing key, token
 * minting, Connect and WebSocket clients and small waits; the independent grpc-js clients and the
 * runner as a child process are lib/testing's.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import WebSocket from "ws";
import { createLogger } from "../../../lib/kit/log.js";
import { sleep } from "../../../lib/kit/sleep.js";
import { createTokenSigner, generateSigningKey, type TokenClaims, type TokenSigner } from "../../../lib/kit/tokens.js";
import { defaultRunnerLimits, type Limits, type RunnerConfig } from "../src/config.js";
import { type Runner, type RunnerOptions, startRunner } from "../src/runner.js";

// Shared with the benches (which import no test helpers), in lib/testing.
export { type ChildRunner, startChildRunner } from "../../../lib/testing/child-runner.js";
export { type GrpcClient, grpcClient, unary } from "../../../lib/testing/grpc-client.js";

export const REPL = "test-repl";
export const SCOPES = ["files", "terminals", "exec", "preview"];

export interface TestRunner {
  runner: Runner;
  signer: TokenSigner;
  /** A valid user token for this repl with every scope. */
  token: string;
  dir: string;
  workspace: string;
  mint(claims?: Partial<Omit<TokenClaims, "iat" | "exp" | "jti">>, ttlSeconds?: number, now?: number): string;
  close(): Promise<void>;
}

export async function startTestRunner(
  opts: { limits?: Partial<Limits>; config?: Partial<RunnerConfig>; options?: Partial<RunnerOptions> } = {},
): Promise<TestRunner> {
  const dir = await mkdtemp(path.join(tmpdir(), "devex-runner-"));
  const workspace = path.join(dir, "ws");
  const key = generateSigningKey();
  const signer = createTokenSigner(key.privateKeyPem);
  const config: RunnerConfig = {
    workspace,
    port: 0,
    host: "127.0.0.1",
    replId: REPL,
    tokenPublicKeyPem: key.publicKeyPem,
    idleTimeoutMs: 240_000,
    limits: { ...defaultRunnerLimits, ...opts.limits },
    logLevel: "silent",
    ...opts.config,
  };
  const runner = await startRunner(config, { log: createLogger("runner", { level: "silent" }), ...opts.options });
  const mint: TestRunner["mint"] = (claims = {}, ttl = 600, now) =>
    signer.mint({ aud: "runner", sub: "user-1", repl: REPL, scope: SCOPES, ...claims }, ttl, now);
  return {
    runner,
    signer,
    token: mint(),
    dir,
    workspace: runner.workspace.root,
    mint,
    async close() {
      await runner.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { waitFor } from "../../../lib/testing/wait.js";
export { sleep };

/** A Connect client (HTTP/1.1, Connect protocol) for one of the runner's services. */
export function connectClient<S extends DescService>(service: S, url: string, token?: string): Client<S> {
  return createClient(
    service,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          if (token) req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}

/** The Connect code of a rejected call. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return Code[ConnectError.from(e).code];
  }
  return "OK";
}

/** A ws client on the terminal bridge, collecting binary output and JSON control frames. */
export function openTerminalSocket(url: string, terminalId: string, token: string, query = "") {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/terminals/${terminalId}${query}`, [
    "devex.terminal.v1",
    `bearer.${token}`,
  ]);
  const state = { text: "", control: [] as Array<Record<string, unknown>>, closed: false };
  ws.on("message", (data, isBinary) => {
    if (isBinary) state.text += data.toString();
    else state.control.push(JSON.parse(data.toString()));
  });
  const closed = new Promise<{ code: number }>((resolve) =>
    ws.on("close", (code) => {
      state.closed = true;
      resolve({ code });
    }),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return { ws, state, opened, closed };
}

/** The HTTP status with which the runner refuses (or 101 accepts) a WebSocket upgrade. */
export function upgradeStatus(httpUrl: string, token: string | undefined, protocols?: string[]): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(
      httpUrl.replace(/^http/, "ws"),
      protocols ?? (token ? ["devex.terminal.v1", `bearer.${token}`] : []),
    );
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.close();
    });
    ws.on("error", () => {});
  });
}

/** The text of the error a call fails with ("" if it succeeds). */
export async function errorText(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "";
  } catch (e) {
    return String(e);
  }
}
