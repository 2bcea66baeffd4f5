/**
 * One-time login links (`/auth/login?code=…`): a random code stored by its hash in the state store,
 * so whichever core the browser reaches redeems it, once, until it expires. The embedded setup
 * prints one at start; the operator gets more through the admin socket (AdminService, core's CLI).
 */
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { StateStore } from "../state/store.js";
import { userIdPattern } from "./principal.js";
import { randomSecret, sha256 } from "./secrets.js";

/** A link from the operator's CLI, unless it asks for another lifetime. */
export const LOGIN_LINK_TTL_MS = 15 * 60_000;
/** The link printed at start: whoever started core may come back to it later that day. */
export const START_LINK_TTL_MS = 24 * 3_600_000;

export interface LoginLink {
  url: string;
  userId: string;
  expireTime: number;
}

export async function issueLoginLink(
  state: StateStore,
  publicUrl: string,
  userId: string,
  ttlMs = LOGIN_LINK_TTL_MS,
  now = Date.now(),
): Promise<LoginLink> {
  if (!userIdPattern.test(userId)) throw invalidArgument(`invalid user id "${userId}"`);
  const code = randomSecret(24);
  const expireTime = now + ttlMs;
  await state.putLoginCode(sha256(code), { userId, expireTime });
  return { url: `${publicUrl.replace(/\/+$/, "")}/auth/login?code=${code}`, userId, expireTime };
}

/** The user a link's code signs in; undefined when it is unknown, used or expired. */
export async function redeemLoginCode(state: StateStore, code: string): Promise<string | undefined> {
  return (await state.takeLoginCode(sha256(code)))?.userId;
}
