/**
 * The OAuth 2.0 device authorization grant (RFC 8628) behind `devex login`: the CLI asks for a code,
 * shows the user a URL and a short user code, and polls; the user, signed in in a browser, approves
 * it on the web client's /device page (AuthService.ApproveDeviceLogin); the next poll receives a new
 * API token of that user's, once.
 *
 *   POST /auth/device/code   client_id=devex-cli [&client_name=…] [&scope=repls:read files:read]
 *        → {device_code, user_code, verification_uri, verification_uri_complete, expires_in, interval}
 *   POST /auth/device/token  grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=…&client_id=devex-cli
 *        → 200 {access_token, token_type, expires_in}, or 400 {error}: authorization_pending,
 *          access_denied, expired_token (also for a device code that is not one), invalid_request,
 *          invalid_client, unsupported_grant_type; invalid_scope for a code asking for no such scope
 * The token an approval gives has the scopes the device asked for (the approving browser session
 * may do everything), or none: everything.
 *
 * The user code is 8 letters from 20 consonants (§6.1: no vowels, so no words; case and dashes are
 * ignored when typed), about 34 bits, and lives 10 minutes. The device code is `<user code>.<secret>`,
 * the secret stored only as a hash. Grants live in the state store, so the CLI may poll one core
 * replica while the browser approves on another. Requests for codes are limited per client address
 * (an IPv6 /64) and per core.
 */

import { randomBytes, timingSafeEqual } from "node:crypto";
import { isApiScope, storedScopes } from "../../../../lib/contracts/api-scopes.js";
import { clientAddress } from "../../../../lib/kit/client-address.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import { Credential } from "../audit/event.js";
import { type RouteAudit, recordRoute } from "../audit/routes.js";
import type { DeviceGrant, StateStore } from "../state/store.js";
import { DEFAULT_TOKEN_TTL_MS, issueApiToken, randomSecret, sha256 } from "./secrets.js";

export const DEVICE_CLIENT_ID = "devex-cli";
export const DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code";
const LIFETIME_MS = 10 * 60_000;
/** Seconds between polls the device is asked to keep (RFC 8628 §3.2). */
const INTERVAL_S = 2;
const ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
/** Behind a proxy every client has the proxy's address: then it is a limit for all, still ample. */
const CODES_PER_MINUTE_PER_ADDRESS = 30;
/** For this core whatever the addresses: each code is a state write, and nobody signs in 300 devices a minute. */
const CODES_PER_MINUTE = 300;

/** The user code as stored ("BCDFGHJK") from what a user typed ("bcdf-ghjk"); undefined if it cannot be one. */
export function normalizeUserCode(typed: string): string | undefined {
  const code = typed.toUpperCase().replace(/[^A-Z]/g, "");
  return code.length === 8 && [...code].every((c) => ALPHABET.includes(c)) ? code : undefined;
}

/** The user code as shown: "BCDF-GHJK". */
export const showUserCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

function newUserCode(): string {
  // 256 is not a multiple of 20: bytes from 240 up are dropped, so every letter is as likely.
  let code = "";
  while (code.length < 8) {
    for (const b of randomBytes(16)) if (b < 240 && code.length < 8) code += ALPHABET[b % 20];
  }
  return code;
}

export interface DeviceLoginDeps {
  state: StateStore;
  publicUrl: string;
  log: Logger;
  /** The audit log, which records the token a device receives. */
  audit?: RouteAudit;
  /** Core is behind a proxy it trusts (DEVEX_TRUST_PROXY): limits count the X-Forwarded-For address, not the proxy's. */
  trustProxy?: boolean;
}

export function deviceLoginRoutes(d: DeviceLoginDeps): HttpHandler {
  const perAddress = new RateLimit(CODES_PER_MINUTE_PER_ADDRESS, 60_000);
  const overall = new RateLimit(CODES_PER_MINUTE, 60_000);
  return async (req, res) => {
    const path = new URL(req.url ?? "/", "http://core").pathname;
    if (path !== "/auth/device/code" && path !== "/auth/device/token") return false;
    if (req.method !== "POST") {
      reply(res, 405, { error: "invalid_request", error_description: "use POST" });
      return true;
    }
    const form = await readForm(req);
    if (!form)
      reply(res, 400, {
        error: "invalid_request",
        error_description: "send a form (application/x-www-form-urlencoded)",
      });
    else if (form.get("client_id") !== DEVICE_CLIENT_ID)
      reply(res, 401, { error: "invalid_client", error_description: `client_id must be ${DEVICE_CLIENT_ID}` });
    else if (path === "/auth/device/code") {
      if (!perAddress.take(clientOf(clientAddress(req, d.trustProxy))) || !overall.take("")) {
        reply(res, 429, {
          error: "slow_down",
          error_description: "too many device logins from this address: wait a minute",
        });
      } else {
        const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
        const unknown = scopes.filter((s) => !isApiScope(s));
        if (unknown.length)
          reply(res, 400, { error: "invalid_scope", error_description: `no such scope: ${unknown.join(", ")}` });
        else reply(res, 200, await start(d, form.get("client_name"), storedScopes(scopes)));
      }
    } else {
      const { status, body } = await poll(d, form, req);
      reply(res, status, body);
    }
    return true;
  };
}

async function start(d: DeviceLoginDeps, clientName: string | null, scopes: string[]) {
  const userCode = newUserCode();
  const secret = randomSecret();
  const now = Date.now();
  const grant: DeviceGrant = {
    userCode,
    deviceHash: sha256(secret),
    // What the approval page shows: the device's own words, printable and short.
    clientName:
      (clientName ?? "")
        .replace(/[^\x20-\x7e]/g, "")
        .slice(0, 64)
        .trim() || "devex CLI",
    createTime: now,
    expireTime: now + LIFETIME_MS,
    status: "pending",
    ...(scopes.length ? { scopes } : {}),
  };
  await d.state.putDeviceGrant(grant);
  const verification = `${d.publicUrl.replace(/\/+$/, "")}/device`;
  return {
    device_code: `${userCode}.${secret}`,
    user_code: showUserCode(userCode),
    verification_uri: verification,
    verification_uri_complete: `${verification}?code=${showUserCode(userCode)}`,
    expires_in: LIFETIME_MS / 1000,
    interval: INTERVAL_S,
  };
}

async function poll(
  d: DeviceLoginDeps,
  form: URLSearchParams,
  req: HttpRequest,
): Promise<{ status: number; body: object }> {
  const fail = (error: string, error_description: string) => ({ status: 400, body: { error, error_description } });
  if (form.get("grant_type") !== DEVICE_GRANT_TYPE)
    return fail("unsupported_grant_type", `grant_type must be ${DEVICE_GRANT_TYPE}`);
  const [userCode, secret] = (form.get("device_code") ?? "").split(".");
  const grant = userCode && secret ? await d.state.getDeviceGrant(userCode) : undefined;
  // A wrong secret answers as an unknown code does: the endpoint tells nobody which codes exist.
  if (!grant || !timingSafeEqual(Buffer.from(sha256(secret)), Buffer.from(grant.deviceHash)))
    return fail("expired_token", "this device login expired or was used: run devex login again");
  if (grant.status === "pending") return fail("authorization_pending", "waiting for the user to approve");
  // Decided: whoever deletes the grant answers, so an approval gives one token.
  if (!(await d.state.deleteDeviceGrant(userCode)))
    return fail("expired_token", "this device login expired or was used: run devex login again");
  if (grant.status === "denied") return fail("access_denied", "the user denied this login");
  const { record, secret: token } = await issueApiToken(
    d.state,
    grant.userId!,
    grant.clientName,
    DEFAULT_TOKEN_TTL_MS,
    Date.now(),
    grant.scopes,
  );
  d.log.info({ userId: record.userId, tokenId: record.tokenId, client: grant.clientName }, "device login approved");
  recordRoute(d.audit, req, {
    rpc: "auth/device-token",
    userId: record.userId,
    tokenId: Credential.device,
    details: { created_token_id: record.tokenId, name: record.name, scopes: record.scopes?.join(",") || "all" },
  });
  return {
    status: 200,
    body: { access_token: token, token_type: "Bearer", expires_in: Math.round(DEFAULT_TOKEN_TTL_MS / 1000) },
  };
}

function reply(res: HttpResponse, status: number, body: object) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** The request's form fields; undefined when it is not a form or is larger than a form needs. */
async function readForm(req: HttpRequest): Promise<URLSearchParams | undefined> {
  if (!/^application\/x-www-form-urlencoded\b/.test(req.headers["content-type"] ?? "")) return undefined;
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) return undefined;
  }
  return new URLSearchParams(body);
}

/** Whom a limit counts: the address, or for IPv6 its /64 (one host's usual share). */
export function clientOf(address = ""): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (v4 || !address.includes(":")) return v4 ?? address;
  const [head] = address.split("::");
  const groups = address.includes("::") ? head.split(":").filter(Boolean) : address.split(":");
  return `${[...groups, "0", "0", "0", "0"].slice(0, 4).join(":")}::/64`;
}

/** At most `limit` takes per key in any `windowMs`; the least recently seen keys go first when many. */
class RateLimit {
  private readonly takes = new Map<string, number[]>();
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  take(key: string): boolean {
    const now = Date.now();
    const recent = (this.takes.get(key) ?? []).filter((t) => t > now - this.windowMs);
    this.takes.delete(key);
    if (this.takes.size >= 10_000) this.takes.delete(this.takes.keys().next().value as string);
    if (recent.length >= this.limit) {
      this.takes.set(key, recent);
      return false;
    }
    recent.push(now);
    this.takes.set(key, recent);
    return true;
  }
}
