/**
 * The browser's use of the shared client layer (lib/client): Connect-Web on core's origin. Core
 * calls carry the session cookie (same origin), or an API token pasted on the login page; runner
 * calls carry the short-lived runner token from StartRepl.
 */
import type { RunnerAccess } from "../../gen/devex/core/v1/repl_pb.js";
import { type CoreClients, createCoreClients, createRunnerClients } from "../../lib/client/clients.js";
import { RunnerSession as SharedRunnerSession } from "../../lib/client/runner-session.js";
import { webTransport } from "../../lib/client/web.js";

const TOKEN_KEY = "devex.apiToken";

export const storedToken = {
  get: (): string => localStorage.getItem(TOKEN_KEY) ?? "",
  set: (t: string) => localStorage.setItem(TOKEN_KEY, t),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

export const core: CoreClients = createCoreClients(webTransport(location.origin, { token: storedToken.get() }));

/** Fails (Unauthenticated) unless the API token is valid. */
export async function checkToken(token: string): Promise<void> {
  await createCoreClients(webTransport(location.origin, { token, format: "json" })).auth.getCurrentUser({});
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
 * Access to one running repl's runner (lib/client/runner-session.ts), refreshed by timer a minute
 * before the token expires; `onRefreshFailed` hears of a timed refresh that failed.
 */
export class RunnerSession extends SharedRunnerSession {
  constructor(replId: string, access: RunnerAccess, onRefreshFailed: (err: unknown) => void) {
    super({
      core,
      replId,
      access,
      runnerClients: (url, token) => createRunnerClients(webTransport(url, { token })),
    });
    this.keepFresh(onRefreshFailed);
  }
}
