/**
 * What an API token may do: its scopes, enforced by core on every RPC (services/core/src/auth/
 * scopes.ts) and carried into the runner tokens core issues (RunnerScope), shown by the web client's
 * tokens page and filtering MCP's tools. A token without scopes (a browser session, a token from
 * before scopes, one made with none chosen) may do everything its user may.
 */
import { RunnerScope } from "./runner-access.js";

export const ApiScope = {
  /** See templates and repls, their state and network policy. */
  replsRead: "repls:read",
  /** Create, stop and delete repls, change their network policy. */
  replsWrite: "repls:write",
  /** Read a repl's files (and open its previews). */
  filesRead: "files:read",
  /** Change a repl's files. */
  filesWrite: "files:write",
  /** Terminals, commands and processes in a repl, and its environment variables (they can run code: BASH_ENV, LD_PRELOAD). */
  exec: "exec",
  /** Manage the user's API tokens. */
  admin: "admin",
} as const;
export type ApiScope = (typeof ApiScope)[keyof typeof ApiScope];

export const ALL_API_SCOPES: readonly ApiScope[] = Object.values(ApiScope);

export const isApiScope = (s: string): s is ApiScope => (ALL_API_SCOPES as readonly string[]).includes(s);

/** What a principal may do: its scopes, or all of them when it has none. */
export function effectiveScopes(scopes: readonly string[] | undefined): ApiScope[] {
  return scopes?.length ? scopes.filter(isApiScope) : [...ALL_API_SCOPES];
}

/**
 * The scopes to store for a token (or a device login) asked with these: distinct, and none for all
 * of them, which means the same and keeps scopes added later.
 */
export function storedScopes(scopes: readonly string[]): string[] {
  const distinct = [...new Set(scopes)];
  return distinct.length >= ALL_API_SCOPES.length ? [] : distinct;
}

/**
 * The runner scopes a user's runner token gets for these API scopes: files:write opens all of
 * FileService, files:read its reading methods, exec terminals and processes; any of them previews.
 */
export function runnerScopesFor(scopes: readonly ApiScope[]): RunnerScope[] {
  const out: RunnerScope[] = [];
  if (scopes.includes(ApiScope.filesWrite)) out.push(RunnerScope.files);
  else if (scopes.includes(ApiScope.filesRead)) out.push(RunnerScope.filesRead);
  if (scopes.includes(ApiScope.exec)) out.push(RunnerScope.terminals, RunnerScope.exec);
  if (out.length) out.push(RunnerScope.preview);
  return out;
}
