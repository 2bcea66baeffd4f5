/**
 * createCore: the whole control plane from injected dependencies (stores, driver, signing key). Used
 * by main.ts with dependencies built from config, and by tests with real stores and a test driver.
 */
import { AuditService } from "../../../gen/devex/core/v1/audit_pb.js";
import { AuthService } from "../../../gen/devex/core/v1/auth_pb.js";
import { CheckpointService } from "../../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplService } from "../../../gen/devex/core/v1/repl_pb.js";
import { RunnerControlService } from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { BlobStore } from "../../../lib/blob/store.js";
import { egressRangesFor } from "../../../lib/egress/host-ranges.js";
import { ALLOW_ALL, type EgressPolicy, type EgressRanges } from "../../../lib/egress/policy.js";
import { authInterceptor } from "../../../lib/kit/auth.js";
import { clientAddressContext } from "../../../lib/kit/client-address.js";
import type { Logger } from "../../../lib/kit/log.js";
import { type HttpHandler, type RunningServer, startServer, type UpgradeHandler } from "../../../lib/kit/server.js";
import { createTokenVerifier, type TokenSigner } from "../../../lib/kit/tokens.js";
import { startAdminSocket } from "./admin/admin-socket.js";
import { auditInterceptor } from "./audit/interceptor.js";
import { type AuditRecorder, createAuditRecorder } from "./audit/recorder.js";
import { DEFAULT_AUDIT_RETENTION } from "./audit/retention.js";
import { createAuditService } from "./audit/service.js";
import { createAuthenticator, scopeInterceptor } from "./auth/authenticate.js";
import { issueLoginLink, START_LINK_TTL_MS } from "./auth/login-links.js";
import { previewSignIn } from "./auth/preview-sign-in.js";
import { principalKey, runnerOf, userOf } from "./auth/principal.js";
import { createAuthService } from "./auth/service.js";
import { createWebAuth, type GitHubOptions } from "./auth/web.js";
import { type CheckpointSettings, defaultCheckpointSettings } from "./checkpoints/retention.js";
import { createCheckpointService } from "./checkpoints/service.js";
import type { Driver } from "./driver/driver.js";
import type { ReplDeps } from "./repl/deps.js";
import { checkSecretsKey } from "./repl/environment.js";
import { createReplEvents } from "./repl/events.js";
import { createGitRoute } from "./repl/git-route.js";
import { GITHUB_DOT_COM } from "./repl/github.js";
import { previewOriginFor } from "./repl/preview-origin.js";
import { reconcileOnce } from "./repl/reconcile.js";
import { createSecretBox } from "./repl/secret-box.js";
import { createReplService } from "./repl/service.js";
import { syncTemplates, type TemplateCatalog } from "./repl/templates.js";
import { createRunnerControlService } from "./runnercontrol/service.js";
import type { AuditRetention, StateStore } from "./state/store.js";

export interface CoreDeps {
  log: Logger;
  state: StateStore;
  blobs: BlobStore;
  driver: Driver;
  signer: TokenSigner;
  /** Folder with one sub-folder per starter template. */
  templatesDir: string;
  port: number;
  host?: string;
  /**
   * Also serve on this Unix socket: the local driver's runners, in their own network namespaces,
   * reach RunnerControlService through it (LocalDriver.coreSocketPath).
   */
  socketPath?: string;
  /** The operator's socket (admin/admin-socket.ts), if core serves one. */
  adminSocketPath?: string;
  /** URL browsers and runners use to reach core; defaults to the listening URL. */
  publicUrl?: string;
  /** Repls per user; defaults to 2. */
  quota?: number;
  /** Private templates per user; defaults to 20. */
  templateQuota?: number;
  /** Checkpoint retention and automatic checkpoints (checkpoints/retention.ts). */
  checkpoints?: Partial<CheckpointSettings>;
  /** Repls from git repositories: size limit (2 GiB), clone timeout (10 min), http:// allowed (no). */
  git?: { maxBytes?: number; timeoutMs?: number; allowHttp?: boolean };
  /** The egress policy of repls whose template names none; defaults to allow_all. */
  egressDefault?: EgressPolicy;
  /** What no policy opens; defaults to the built-in ranges and this host's addresses. */
  egressRanges?: EgressRanges;
  /** GitHub OAuth; without it core runs the embedded single-user setup with a one-time login link. */
  github?: GitHubOptions;
  /** Signs the short-lived OAuth flow cookie. */
  cookieSecret: string;
  /** Key of repls' secrets (32 bytes; start-core.ts loads DEVEX_SECRETS_KEY or the data directory's). */
  secretsKey: Buffer;
  /** How much of the audit log to keep; defaults to 90 days, 200,000 events, 20,000 per user. */
  auditRetention?: AuditRetention;
  /**
   * Core is behind a proxy it trusts (DEVEX_TRUST_PROXY): the client's address is the last one in
   * X-Forwarded-For instead of the connection's. Defaults to false.
   */
  trustProxy?: boolean;
  /** The embedded setup's user; defaults to "local". */
  localUser?: string;
  heartbeatIntervalMs?: number;
  sessionTtlMs?: number;
  runnerTokenTtlSeconds?: number;
  lockWaitMs?: number;
  lockTtlMs?: number;
  /** Deadline of one driver start or stop; defaults to 10 minutes. */
  operationTimeoutMs?: number;
  /** How often orphaned runners are looked for; 0 turns it off. Defaults to 60 s. */
  reconcileIntervalMs?: number;
  /** Routes served before core's own (the embedded setup's `/<replId>/…` proxy to runners). */
  http?: HttpHandler;
  upgrade?: UpgradeHandler;
  /** Routes served after core's own, before the 404: the hook for the web client's static files. */
  web?: HttpHandler;
  /**
   * A second origin for previews of users' dev servers (the embedded setup's preview proxy), so
   * their pages never run on core's origin. RunnerAccess.preview_url_template then points at it.
   */
  preview?: {
    http: HttpHandler;
    upgrade: UpgradeHandler;
    /** Defaults to a free port. */
    port?: number;
    /** URL browsers use to reach it; defaults to the listening URL. */
    publicUrl?: string;
  };
}

export interface Core {
  readonly server: RunningServer;
  /** The listening URL. */
  readonly url: string;
  readonly publicUrl: string;
  /** The preview origin's URL, when core serves one. */
  readonly previewUrl?: string;
  /** Embedded setup only: the one-time login link. */
  readonly loginLink?: string;
  /** Stops runners no active session points at; returns how many. Also runs periodically. */
  reconcile(signal?: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/** The embedded setup's login link printed at start (no GitHub), and the operator's admin socket. */
async function operatorAccess(deps: CoreDeps, publicUrl: string, audit: AuditRecorder) {
  const localUser = deps.localUser ?? "local";
  const loginLink = deps.github
    ? undefined
    : (await issueLoginLink(deps.state, publicUrl, localUser, START_LINK_TTL_MS)).url;
  const adminDeps = {
    state: deps.state,
    blobs: deps.blobs,
    log: deps.log,
    publicUrl: () => publicUrl,
    localUser,
    audit,
  };
  const admin = deps.adminSocketPath ? await startAdminSocket(deps.adminSocketPath, adminDeps) : undefined;
  return { loginLink, admin };
}

/** What the lifecycle operations need; the URLs are known once the servers listen. */
function replDepsOf(
  deps: CoreDeps,
  templates: TemplateCatalog,
  heartbeatIntervalMs: number,
  urls: { publicUrl: () => string; previewUrl: () => string | undefined },
): ReplDeps {
  return {
    state: deps.state,
    blobs: deps.blobs,
    driver: deps.driver,
    signer: deps.signer,
    secrets: createSecretBox(deps.secretsKey),
    templates,
    events: createReplEvents(),
    log: deps.log,
    quota: deps.quota ?? 2,
    templateQuota: deps.templateQuota ?? 20,
    checkpoints: { ...defaultCheckpointSettings, ...deps.checkpoints },
    clone: {
      maxBytes: deps.git?.maxBytes ?? 2 * 2 ** 30,
      timeoutMs: deps.git?.timeoutMs ?? 10 * 60_000,
      allowHttp: deps.git?.allowHttp ?? false,
    },
    github: deps.github && deps.github.repositories !== false ? (deps.github.hosts ?? GITHUB_DOT_COM) : undefined,
    egressDefault: deps.egressDefault ?? ALLOW_ALL,
    egressDeniedCidrs: (deps.egressRanges ?? egressRangesFor("")).neverCidrs(),
    get coreUrl() {
      return urls.publicUrl();
    },
    get publicUrl() {
      return urls.publicUrl();
    },
    get previewUrl() {
      return urls.previewUrl();
    },
    sessionTtlMs: deps.sessionTtlMs ?? heartbeatIntervalMs * 3,
    runnerTokenTtlSeconds: deps.runnerTokenTtlSeconds ?? 15 * 60,
    lockWaitMs: deps.lockWaitMs ?? 30_000,
    lockTtlMs: deps.lockTtlMs ?? 120_000,
    operationTimeoutMs: deps.operationTimeoutMs ?? 10 * 60_000,
  };
}

export async function createCore(deps: CoreDeps): Promise<Core> {
  const { log } = deps;
  const templates = await syncTemplates(deps.templatesDir, deps);
  log.info({ templates: (await templates.list("")).map((t) => t.name) }, "templates synced");

  let http: HttpHandler = () => false;
  let publicUrl = deps.publicUrl?.replace(/\/+$/, "") ?? "";
  // Each repl's previews live on <replId>.<host of this URL> (repl/preview-origin.ts).
  let previewUrl = (deps.preview?.publicUrl ?? deps.driver.previewUrl)?.replace(/\/+$/, "");
  if (previewUrl) previewOriginFor(previewUrl, "r000000000000"); // an unusable URL fails the start
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 30_000;
  const repl = replDepsOf(deps, templates, heartbeatIntervalMs, {
    publicUrl: () => publicUrl,
    previewUrl: () => previewUrl,
  });
  await checkSecretsKey(deps.state, repl.secrets);
  const audit = createAuditRecorder(deps.state, deps.auditRetention ?? DEFAULT_AUDIT_RETENTION, log);
  const trustProxy = deps.trustProxy ?? false;
  const verifier = createTokenVerifier(deps.signer.publicKeyPem);
  const authenticate = createAuthenticator(deps.state, verifier, () => `${publicUrl}/auth/login`);

  const server = await startServer({
    name: "core",
    port: deps.port,
    host: deps.host,
    socketPath: deps.socketPath,
    // Sandboxed runners connect as the sandbox's uid; every call on it is authenticated anyway.
    socketMode: 0o666,
    log,
    readMaxBytes: 1024 * 1024,
    // The audit log outside authentication and scopes, so it sees refusals and who was refused.
    interceptors: [auditInterceptor(audit), authInterceptor(principalKey, authenticate), scopeInterceptor()],
    contextValues: clientAddressContext(trustProxy),
    routes(router) {
      router.service(
        AuthService,
        createAuthService(deps.state, userOf, { secureCookies: publicUrl.startsWith("https:") }),
      );
      router.service(ReplService, createReplService(repl, userOf));
      router.service(CheckpointService, createCheckpointService(repl, userOf));
      router.service(AuditService, createAuditService(deps.state, audit, userOf));
      router.service(RunnerControlService, createRunnerControlService(repl, runnerOf, { heartbeatIntervalMs, audit }));
    },
    http: async (req, res) =>
      (await deps.http?.(req, res)) || (await http(req, res)) || (await deps.web?.(req, res)) || false,
    upgrade: deps.upgrade,
  });
  publicUrl ||= server.url;
  let previewServer: RunningServer | undefined;
  if (deps.preview) {
    try {
      previewServer = await startServer({
        name: "core-preview",
        port: deps.preview.port ?? 0,
        host: deps.host,
        log,
        routes: () => {},
        http: deps.preview.http,
        upgrade: deps.preview.upgrade,
      });
    } catch (err) {
      await server.close();
      throw err;
    }
    previewUrl ||= previewServer.url;
  }

  const { loginLink, admin } = await operatorAccess(deps, publicUrl, audit).catch(async (err) => {
    await Promise.all([server.close(), previewServer?.close()]);
    throw err;
  });
  const webAuth = createWebAuth({
    publicUrl,
    state: deps.state,
    log,
    cookieSecret: deps.cookieSecret,
    github: deps.github,
    secrets: repl.secrets,
    audit,
    trustProxy,
  });
  const signInToPreview = previewSignIn(repl, { recorder: audit, trustProxy });
  const gitRoute = createGitRoute(repl, verifier, { recorder: audit, trustProxy });
  http = async (req, res) => (await signInToPreview(req, res)) || (await gitRoute(req, res)) || webAuth(req, res);

  const reconcile = (signal = AbortSignal.timeout(5 * 60_000)) => reconcileOnce(repl, signal);
  const interval = deps.reconcileIntervalMs ?? 60_000;
  let reconciling: Promise<unknown> = Promise.resolve();
  const timer =
    interval > 0
      ? setInterval(() => {
          reconciling = reconcile().catch((err) => log.warn({ err }, "reconciliation failed"));
        }, interval)
      : undefined;
  timer?.unref();

  return {
    server,
    url: server.url,
    publicUrl,
    previewUrl,
    loginLink,
    reconcile,
    async close() {
      clearInterval(timer);
      await Promise.all([server.close(), previewServer?.close(), admin?.close()]);
      await reconciling;
      await audit.flushed();
    },
  };
}
