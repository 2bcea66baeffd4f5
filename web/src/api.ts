/**
 * The browser's transports for the shared client layer (lib/client/clients.ts): Connect-Web over
 * HTTP/1.1 on core's origin. Core calls carry the session cookie (same origin), or an API token
 * pasted on the login page; runner calls carry the short-lived runner token from StartRepl.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { RunnerAccess } from "../../gen/devex/core/v1/repl_pb.js";
import {
  bearerAuth,
  type CoreClients,
  createCoreClients,
  createRunnerClients,
  type RunnerClients,
} from "../../lib/client/clients.js";

const TOKEN_KEY = "devex.apiToken";

export const storedToken = {
  get: (): string => localStorage.getItem(TOKEN_KEY) ?? "",
  set: (t: string) => localStorage.setItem(TOKEN_KEY, t),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

function coreTransport() {
  const token = storedToken.get();
  const interceptors: Interceptor[] = token ? [bearerAuth(token)] : [];
  return createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors });
}

export const core: CoreClients = createCoreClients(coreTransport());

/** Fails (Unauthenticated) unless the API token is valid. */
export async function checkToken(token: string): Promise<void> {
  const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [bearerAuth(token)] });
  await createCoreClients(transport).auth.getCurrentUser({});
}

/** Served by core next to the page (services/core/src/web-static.ts). */
export interface WebConfig {
  /** GitHub sign-in is configured. */
  github: boolean;
  /** The browser sent a session cookie (it may still have expired). */
  session: boolean;
}

export async function webConfig(): Promise<WebConfig> {
  try {
    const res = await fetch("/web-config.json", { cache: "no-store" });
    if (res.ok) return (await res.json()) as WebConfig;
  } catch {}
  return { github: false, session: true };
}

/**
 * Access to one running repl's runner. StartRepl is called again a minute before the token expires
 * (it returns the running runner with a fresh token); clients read the current token on every call.
 */
export class RunnerSession {
  readonly clients: RunnerClients;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    readonly replId: string,
    private access: RunnerAccess,
    private readonly onRefreshFailed: (err: unknown) => void,
  ) {
    const transport = createConnectTransport({
      baseUrl: access.url,
      useBinaryFormat: true,
      interceptors: [bearerAuth(() => this.access.token)],
    });
    this.clients = createRunnerClients(transport);
    this.scheduleRefresh();
  }

  get token(): string {
    return this.access.token;
  }

  /** ws(s):// URL of a terminal's WebSocket bridge. */
  terminalUrl(terminalId: string, params: Record<string, string | number>): string {
    const base = this.access.url.replace(/^http/, "ws").replace(/\/+$/, "");
    const path = (this.access.websocketPath || "/ws/terminals/").replace(/\/?$/, "/");
    const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return `${base}${path}${encodeURIComponent(terminalId)}?${query}`;
  }

  /**
   * The preview URL of a port, with the preview-only token once (the runner then sets a cookie for
   * the page); the access token never goes into a link.
   */
  previewUrl(port: number, withToken = true): string {
    const template = this.access.previewUrlTemplate || `${this.access.url}/preview/{port}/`;
    const url = template.replace("{port}", String(port));
    return withToken ? `${url}?token=${encodeURIComponent(this.access.previewToken)}` : url;
  }

  async refresh(): Promise<void> {
    const res = await core.repls.startRepl({ replId: this.replId });
    if (res.runner) this.access = res.runner;
    this.scheduleRefresh();
  }

  private scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (this.closed) return;
    const expires = this.access.expireTime ? timestampDate(this.access.expireTime).getTime() : Date.now() + 15 * 60_000;
    const wait = Math.max(5_000, expires - Date.now() - 60_000);
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch((err) => {
        this.onRefreshFailed(err);
        this.refreshTimer = setTimeout(() => this.scheduleRefresh(), 10_000);
      });
    }, wait);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
  }
}
