/** Browser sessions: a random cookie value, stored server-side under its SHA-256. */
import type { StateStore } from "../state/store.js";
import { SESSION_TTL_MS, sessionCookie } from "./cookies.js";
import { randomSecret, sha256 } from "./secrets.js";

/** Creates a session for the user and returns its Set-Cookie header value. */
export async function openSession(state: StateStore, userId: string, secure: boolean): Promise<string> {
  const value = randomSecret();
  const now = Date.now();
  await state.putWebSession(sha256(value), { userId, createTime: now, expireTime: now + SESSION_TTL_MS });
  return sessionCookie(value, secure);
}
