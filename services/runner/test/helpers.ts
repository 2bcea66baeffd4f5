/**
 * Test helpers: a runner on a random port over a temp workspace with a fresh signing key, token
 * minting, independent grpc-js clients (proto-loader reading proto/ directly) and small waits.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import WebSocket from "ws";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey, type TokenClaims, type TokenSigner } from "../../../lib/kit/tokens.js";
import { defaultLimits, type Limits, type RunnerConfig } from "../src/config.js";
import { type Runner, type RunnerOptions, startRunner } from "../src/runner.js";

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
    limits: { ...defaultLimits, ...opts.limits },
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

const protoRoot = path.resolve(import.meta.dirname, "../../../proto");
const validateRoot = path.resolve(import.meta.dirname, "../../../third_party/protovalidate");

// biome-ignore lint/suspicious/noExplicitAny: grpc-js clients built from proto-loader are untyped
export type GrpcClient = any;

/** A grpc-js client for `devex.runner.v1.<service>` (or a full name), loaded from proto/ with proto-loader. */
export function grpcClient(url: string, service: string, token: string): GrpcClient {
  const def = protoLoader.loadSync(
    [
      "devex/runner/v1/file.proto",
      "devex/runner/v1/terminal.proto",
      "devex/runner/v1/process.proto",
      "devex/runner/v1/status.proto",
      "devex/runnercontrol/v1/runner_control.proto",
    ],
    { includeDirs: [protoRoot, validateRoot], longs: String, enums: String, defaults: true, oneofs: true },
  );
  const pkg = grpc.loadPackageDefinition(def);
  const full = service.includes(".") ? service : `devex.runner.v1.${service}`;
  // biome-ignore lint/suspicious/noExplicitAny: walking the loaded package by name
  const Ctor = full.split(".").reduce((o: any, k) => o[k], pkg);
  const withToken: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (token) metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return new Ctor(new URL(url).host, grpc.credentials.createInsecure(), {
    interceptors: [withToken],
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // grpc-js advertises HTTP/2's default 64 KiB receive window, which caps any server at one
    // window per round trip; real clients (Go, C++ with BDP probing) use far larger ones.
    "grpc-node.flow_control_window": 8 * 1024 * 1024,
  });
}

/** Promisified unary call of a grpc-js client. */
export function unary<T = GrpcClient>(client: GrpcClient, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `f` until it returns truthy or `timeoutMs` passes. */
export async function waitFor<T>(f: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

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

export interface ChildRunner {
  url: string;
  pid: number;
  token: string;
  mint: TestRunner["mint"];
  /** Resident set size of the runner process, in bytes. */
  rss(): number;
  close(): Promise<void>;
}

/** Starts `services/runner/src/main.ts` as a child process (for RSS measurements), configured by env. */
export async function startChildRunner(env: Record<string, string> = {}): Promise<ChildRunner> {
  const { spawn } = await import("node:child_process");
  const dir = await mkdtemp(path.join(tmpdir(), "devex-runner-child-"));
  const key = generateSigningKey();
  const signer = createTokenSigner(key.privateKeyPem);
  const main = path.resolve(import.meta.dirname, "../src/main.ts");
  const child = spawn(process.execPath, ["--import", "tsx", main], {
    env: {
      ...process.env,
      DEVEX_RUNNER_WORKSPACE: path.join(dir, "ws"),
      DEVEX_RUNNER_PORT: "0",
      DEVEX_REPL_ID: REPL,
      DEVEX_TOKEN_PUBLIC_KEY: key.publicKeyPem,
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /listening on (http:\/\/[^"\s]+)/.exec(buf);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`runner exited with ${code} before listening:\n${buf}`)));
  });
  child.stdout!.resume();
  const mint: TestRunner["mint"] = (claims = {}, ttl = 600, now) =>
    signer.mint({ aud: "runner", sub: "user-1", repl: REPL, scope: SCOPES, ...claims }, ttl, now);
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

/** The text of the error a call fails with ("" if it succeeds). */
export async function errorText(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "";
  } catch (e) {
    return String(e);
  }
}
