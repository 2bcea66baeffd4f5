/** Starts core on a free port with real stores and the test driver, plus clients for it. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService } from "../../../gen/devex/core/v1/audit_pb.js";
import { AuthService } from "../../../gen/devex/core/v1/auth_pb.js";
import { CheckpointService } from "../../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplService } from "../../../gen/devex/core/v1/repl_pb.js";
import { RunnerControlService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import type { BlobStore } from "../../../lib/blob/store.js";
import { createLogger } from "../../../lib/kit/log.js";
import { createTokenSigner, generateSigningKey, type TokenSigner } from "../../../lib/kit/tokens.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Core, type CoreDeps, createCore } from "../src/core.js";
import { createEmbeddedStore } from "../src/state/embedded.js";
import type { StateStore } from "../src/state/store.js";
import { createTestDriver, type TestDriver } from "./test-driver.js";

/** The secrets key of test cores (core.ts checks that cores sharing a store share it). */
export const TEST_SECRETS_KEY = Buffer.alloc(32, 7);

export const templatesDir = fileURLToPath(new URL("../../../templates", import.meta.url));

export interface TestCore {
  core: Core;
  /** Temp dir holding the embedded state (state/) and local blobs (blobs/) unless shared ones were given. */
  dir: string;
  state: StateStore;
  blobs: BlobStore;
  driver: TestDriver;
  signer: TokenSigner;
  /** Creates an API token for the user and returns its secret. */
  token(userId: string): Promise<string>;
  clients(auth?: { bearer?: string; cookie?: string }, http2?: boolean): Clients;
  close(): Promise<void>;
}

export interface Clients {
  auth: Client<typeof AuthService>;
  repl: Client<typeof ReplService>;
  checkpoints: Client<typeof CheckpointService>;
  control: Client<typeof RunnerControlService>;
  audit: Client<typeof AuditService>;
}

export function clientsFor(baseUrl: string, auth: { bearer?: string; cookie?: string } = {}, http2 = false): Clients {
  const headers: Interceptor = (next) => (req) => {
    if (auth.bearer) req.header.set("authorization", `Bearer ${auth.bearer}`);
    if (auth.cookie) req.header.set("cookie", auth.cookie);
    return next(req);
  };
  const transport: Transport = http2
    ? createGrpcTransport({ baseUrl, interceptors: [headers] })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [headers] });
  const make = <S extends DescService>(s: S) => createClient(s, transport);
  return {
    auth: make(AuthService),
    repl: make(ReplService),
    checkpoints: make(CheckpointService),
    control: make(RunnerControlService),
    audit: make(AuditService),
  };
}

export interface TestCoreOptions extends Partial<CoreDeps> {
  /** Shares stores between instances (two cores on one Redis). */
  state?: StateStore;
  blobs?: BlobStore;
  driver?: TestDriver;
}

export async function startTestCore(options: TestCoreOptions = {}): Promise<TestCore> {
  const dir = await mkdtemp(join(tmpdir(), "devex-core-"));
  const state = options.state ?? (await createEmbeddedStore(join(dir, "state")));
  const blobs = options.blobs ?? createLocalBlobStore(join(dir, "blobs"));
  const driver = options.driver ?? createTestDriver();
  const signer = options.signer ?? createTokenSigner(generateSigningKey().privateKeyPem);
  const core = await createCore({
    log: createLogger("core", { level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    templatesDir,
    port: 0,
    cookieSecret: "test-cookie-secret",
    // One key for every test core: two cores on one store must share it.
    secretsKey: TEST_SECRETS_KEY,
    ...options,
    state,
    blobs,
    driver,
    signer,
  }).catch(async (err) => {
    if (!options.state) await state.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    core,
    dir,
    state,
    blobs,
    driver,
    signer,
    token: async (userId) => (await issueApiToken(state, userId, "test")).secret,
    clients: (auth, http2) => clientsFor(core.url, auth, http2),
    async close() {
      await core.close();
      if (!options.state) await state.close();
      if (!options.blobs) await blobs.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
