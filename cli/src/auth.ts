/** login, logout, whoami. */
import { coreClientsFor } from "../../lib/client/node.js";
import { ALL_API_SCOPES } from "../../lib/contracts/api-scopes.js";
import { CliError } from "./cli-error.js";
import { configPath, type Env, normalizeUrl, removeLogin, saveLogin } from "./config.js";
import { describeError } from "./errors.js";
import { openSession } from "./session.js";

/** Verifies the token with GetCurrentUser before anything is written. */
export async function login(env: Env, url: string, token: string, out: NodeJS.WritableStream): Promise<void> {
  const baseUrl = normalizeUrl(url);
  if (!token) throw new CliError("the token is empty");
  const core = coreClientsFor(baseUrl, { token });
  let userId: string;
  try {
    const res = await core.auth.getCurrentUser({});
    userId = res.user?.userId ?? "";
  } catch (e) {
    const err = describeError(e);
    throw new CliError(
      err.message.startsWith("not logged in") ? `login failed: ${baseUrl} rejected the token` : err.message,
    );
  }
  const path = await saveLogin(env, { url: baseUrl, token });
  out.write(`logged in to ${baseUrl} as ${userId} (saved in ${path})\n`);
}

export async function logout(env: Env, out: NodeJS.WritableStream): Promise<void> {
  const had = await removeLogin(env);
  out.write(had ? `logged out (removed ${configPath(env)})\n` : "not logged in\n");
}

export async function whoami(env: Env, out: NodeJS.WritableStream): Promise<void> {
  const { core, login } = await openSession(env);
  const { user, scopes } = await core.auth.getCurrentUser({});
  const name = user?.displayName && user.displayName !== user.userId ? ` (${user.displayName})` : "";
  const limited = scopes.length < ALL_API_SCOPES.length ? `, may only: ${scopes.join(", ")}` : "";
  out.write(`${user?.userId}${name} at ${login.url}${limited}\n`);
}
