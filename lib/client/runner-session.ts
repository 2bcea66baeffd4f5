/**
 * Access to one running repl's runner, for the web client, the CLI and the MCP server: the
 * RunnerAccess StartRepl returned, runner clients that read the current token on every call, and a
 * refresh that calls StartRepl again (it returns the running runner as is, with a fresh token),
 * on demand or by a timer a minute before the token expires. No Node code: the web client bundles it.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type CallOptions, Code, ConnectError } from "@connectrpc/connect";
import type { Repl, RunnerAccess } from "../../gen/devex/core/v1/repl_pb.js";
import { RunnerRoute } from "../contracts/runner-access.js";
import type { CoreClients, RunnerClients } from "./clients.js";
import { type TerminalSocketOptions, terminalSocketUrl } from "./terminal-socket.js";

/** Runner clients for a runner URL that send the token `token()` returns at each call. */
export type RunnerClientsFactory = (baseUrl: string, token: () => string) => RunnerClients;

export interface RunnerSessionOptions {
  /** Core as the user: refreshes call its StartRepl. */
  core: CoreClients;
  replId: string;
  access: RunnerAccess;
  runnerClients: RunnerClientsFactory;
  now?: () => number;
}

/** Tokens are refreshed this long before they expire. */
export const REFRESH_MARGIN_MS = 60_000;
/** The timer's guess at a token's life when the access carries no expire time. */
const ASSUMED_LIFETIME_MS = 15 * 60_000;
/** The timer waits at least this long, and this long again after a failed refresh. */
const MIN_WAIT_MS = 5_000;
const RETRY_WAIT_MS = 10_000;

/** StartRepl (which starts a stopped repl), then a session on the runner it returned. */
export async function startRunnerSession(
  options: Omit<RunnerSessionOptions, "access">,
  call?: CallOptions,
): Promise<{ repl: Repl | undefined; session: RunnerSession }> {
  const { repl, runner } = await options.core.repls.startRepl({ replId: options.replId }, call);
  if (!runner?.url || !runner.token) {
    throw new ConnectError(`repl ${options.replId} started without runner access`, Code.Internal);
  }
  return { repl, session: new RunnerSession({ ...options, access: runner }) };
}

export class RunnerSession {
  readonly replId: string;
  private current: RunnerAccess;
  private built: { url: string; clients: RunnerClients } | undefined;
  private refreshing: Promise<void> | undefined;
  private onTimedRefreshFailed: ((err: unknown) => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly o: RunnerSessionOptions) {
    this.replId = o.replId;
    this.current = o.access;
  }

  get access(): RunnerAccess {
    return this.current;
  }

  get token(): string {
    return this.current.token;
  }

  /** Clients of the current runner (rebuilt only if a refresh moved the repl to another runner). */
  get clients(): RunnerClients {
    const { url } = this.current;
    if (this.built?.url !== url) this.built = { url, clients: this.o.runnerClients(url, () => this.current.token) };
    return this.built.clients;
  }

  /** When the token expires (ms since the epoch), if the access says. */
  expiresAt(): number | undefined {
    return this.current.expireTime ? timestampDate(this.current.expireTime).getTime() : undefined;
  }

  /** The token expires within the refresh margin, or its expiry is unknown. */
  needsRefresh(): boolean {
    const expires = this.expiresAt();
    return expires === undefined || expires - (this.o.now ?? Date.now)() < REFRESH_MARGIN_MS;
  }

  /** Calls StartRepl again for fresh access; concurrent calls share one StartRepl. */
  refresh(): Promise<void> {
    this.refreshing ??= this.renew().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Refreshes by timer from now on, a minute before each token expires. A failed timed refresh is
   * reported to `onFailed` and tried again.
   */
  keepFresh(onFailed: (err: unknown) => void): void {
    this.onTimedRefreshFailed = onFailed;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** ws(s):// URL of a terminal's WebSocket bridge. */
  terminalUrl(terminalId: string, options?: TerminalSocketOptions): string {
    return terminalSocketUrl(this.current, terminalId, options);
  }

  /**
   * The preview URL of a port, with the preview-only token once (the runner then sets a cookie for
   * the page); the access token never goes into a link.
   */
  previewUrl(port: number, withToken = true): string {
    const { url, previewUrlTemplate, previewToken } = this.current;
    const template = previewUrlTemplate || `${url.replace(/\/+$/, "")}${RunnerRoute.preview}{port}/`;
    const preview = template.replace("{port}", String(port));
    return withToken ? `${preview}?token=${encodeURIComponent(previewToken)}` : preview;
  }

  private async renew(): Promise<void> {
    const { runner } = await this.o.core.repls.startRepl({ replId: this.replId });
    if (runner) this.current = runner;
    this.schedule();
  }

  private schedule(): void {
    const onFailed = this.onTimedRefreshFailed;
    if (!onFailed || this.closed) return;
    clearTimeout(this.timer);
    const now = (this.o.now ?? Date.now)();
    const expires = this.expiresAt() ?? now + ASSUMED_LIFETIME_MS;
    const wait = Math.max(MIN_WAIT_MS, expires - now - REFRESH_MARGIN_MS);
    this.timer = setTimeout(() => {
      this.refresh().catch((err) => {
        onFailed(err);
        if (!this.closed) this.timer = setTimeout(() => this.schedule(), RETRY_WAIT_MS);
      });
    }, wait);
  }
}
