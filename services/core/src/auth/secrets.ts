/** API token and session secrets: random, shown once, stored only as SHA-256. */
import { createHash, randomBytes } from "node:crypto";
import { storedScopes } from "../../../../lib/contracts/api-scopes.js";
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { ApiTokenRecord, StateStore } from "../state/store.js";
import { userIdPattern } from "./principal.js";

export const API_TOKEN_PREFIX = "dvx_";
export const DEFAULT_TOKEN_TTL_MS = 90 * 24 * 3600 * 1000;

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
export const randomSecret = (bytes = 32) => randomBytes(bytes).toString("base64url");

/** Creates an API token for the user; returns its record and the secret, which is not stored. */
export async function issueApiToken(
  state: StateStore,
  userId: string,
  name: string,
  ttlMs = DEFAULT_TOKEN_TTL_MS,
  now = Date.now(),
  scopes: readonly string[] = [],
) {
  if (!userIdPattern.test(userId)) throw invalidArgument(`invalid user id "${userId}"`);
  const stored = storedScopes(scopes);
  const secret = API_TOKEN_PREFIX + randomSecret();
  const record: ApiTokenRecord = {
    tokenId: randomSecret(9),
    userId,
    name,
    hash: sha256(secret),
    createTime: now,
    expireTime: ttlMs > 0 ? now + ttlMs : 0,
    lastUseTime: 0,
    ...(stored.length ? { scopes: stored } : {}),
  };
  await state.putApiToken(record);
  return { record, secret };
}
