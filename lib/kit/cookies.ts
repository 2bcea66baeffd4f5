/**
 * Cookies, shared by core and the runner. Every cookie the platform itself sets is named `devex_…`
 * (core's session, the runner's preview token). Requests that end in user code — a repl's dev
 * server behind the preview proxy — are stripped of all of them: code running in a repl must never
 * see the user's credentials, and on a shared host (the embedded setup, or an ingress on core's
 * host) the browser sends core's session cookie along with every preview request.
 */
export const PLATFORM_COOKIE_PREFIX = "devex_";

export function isPlatformCookie(name: string): boolean {
  return name.startsWith(PLATFORM_COOKIE_PREFIX);
}

/** The value of cookie `name` in a Cookie header, URI-decoded; undefined when absent or malformed. */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i <= 0 || part.slice(0, i).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A Cookie header without the cookies whose names `drop` selects; undefined when none is left. */
export function withoutCookies(header: string | undefined, drop: (name: string) => boolean): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p && !drop((p.includes("=") ? p.slice(0, p.indexOf("=")) : p).trim()));
  return kept.length ? kept.join("; ") : undefined;
}
