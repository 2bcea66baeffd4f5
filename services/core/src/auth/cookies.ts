import { PLATFORM_COOKIE_PREFIX } from "../../../../lib/kit/cookies.js";

/** The browser session cookie: HttpOnly, SameSite=Lax, Secure when core is served over https. */
export const SESSION_COOKIE = `${PLATFORM_COOKIE_PREFIX}session`;
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export function sessionCookie(value: string, secure: boolean, maxAgeMs = SESSION_TTL_MS): string {
  const attrs = [
    `${SESSION_COOKIE}=${value}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Lax",
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
  ];
  if (secure) attrs.push("Secure");
  return attrs.join("; ");
}

export const clearSessionCookie = (secure: boolean) => sessionCookie("", secure, 0);
