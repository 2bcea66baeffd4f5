/**
 * `devex login --url <core>` without a token: the OAuth 2.0 device authorization grant (RFC 8628)
 * against core's /auth/device endpoints (services/core/src/auth/device-login.ts). Prints a URL and a
 * short code, polls until the user approves in a browser where they are signed in, and returns the
 * API token core issues then.
 */
import { hostname } from "node:os";
import { CliError } from "./cli-error.js";

const CLIENT_ID = "devex-cli";
const GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code";

interface Started {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

export async function deviceLogin(baseUrl: string, out: NodeJS.WritableStream, scopes: string[] = []): Promise<string> {
  const ask = { client_name: `devex CLI on ${hostname()}`, ...(scopes.length ? { scope: scopes.join(" ") } : {}) };
  const started = (await post(baseUrl, "code", ask)) as Started & {
    error_description?: string;
  };
  if (!started.device_code) throw new CliError(`device login refused: ${started.error_description ?? "no code given"}`);
  out.write(
    [
      `To sign in, open ${started.verification_uri_complete ?? started.verification_uri}`,
      `in a browser where you are signed in to Devex, and check that it shows the code ${started.user_code}.`,
      "Waiting for you to approve…",
      "",
    ].join("\n"),
  );
  let interval = (started.interval ?? 5) * 1000;
  const deadline = Date.now() + started.expires_in * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, interval));
    const answer = (await post(baseUrl, "token", { grant_type: GRANT_TYPE, device_code: started.device_code })) as {
      access_token?: string;
      error?: string;
      error_description?: string;
    };
    if (answer.access_token) return answer.access_token;
    if (answer.error === "authorization_pending" || answer.error === "temporarily_unavailable") continue;
    if (answer.error === "slow_down") interval += 5000;
    else if (answer.error === "access_denied") throw new CliError("the sign-in was denied in the browser");
    else if (answer.error === "expired_token")
      throw new CliError("the code expired before it was approved: run devex login again");
    else throw new CliError(`device login failed: ${answer.error_description ?? answer.error ?? "no answer"}`);
  }
  throw new CliError("the code expired before it was approved: run devex login again");
}

/** POSTs a form to /auth/device/<what>; resolves with the JSON answer, whatever its status. */
async function post(baseUrl: string, what: "code" | "token", fields: Record<string, string>): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/auth/device/${what}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLIENT_ID, ...fields }),
    });
  } catch {
    throw new CliError(`cannot reach the Devex server at ${baseUrl}: check the URL`);
  }
  // A passing server error (a restart, a proxy's 502) is waited out like a pending answer.
  if (res.status >= 500) return { error: "temporarily_unavailable" };
  if (!(res.headers.get("content-type") ?? "").startsWith("application/json"))
    throw new CliError(`${baseUrl} offers no device login (HTTP ${res.status}): is it a Devex server?`);
  return res.json();
}
