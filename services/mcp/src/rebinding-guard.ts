/**
 * Host and Origin checks against DNS rebinding: a web page whose name resolves to this server must
 * not reach it through a visitor's browser. What passes:
 * - Host: the public URL's host and the operator's list; and, when the server is local (its public
 *   URL names localhost, 127.0.0.1 or [::1]), any of those three names on any port, as the MCP spec
 *   counts them all as the same local server (a rebinding page always carries its own name).
 * - Origin: absent (not a browser); the public URL's origin and the operator's list; and, for a
 *   local server, http(s) on a loopback name on any port, which is where local browser-based MCP
 *   clients run. Every request still needs its bearer token.
 */

const loopbackNames = new Set(["localhost", "127.0.0.1", "[::1]"]);

export interface RebindingGuardOptions {
  publicUrl: string;
  allowedHosts: string[];
  allowedOrigins: string[];
}

export type Refusal = { header: "host" | "origin"; value: string } | undefined;

/** Why a request's Host or Origin is refused, or undefined when both may pass. */
export type RebindingGuard = (host: string | undefined, origin: string | undefined) => Refusal;

export function createRebindingGuard(o: RebindingGuardOptions): RebindingGuard {
  const pub = new URL(o.publicUrl);
  // Hosts compared as the public URL's scheme writes them: "mcp.example.com:443" is "mcp.example.com".
  const normal = (host: string) => {
    if (/[@/\\?#\s]/.test(host)) return undefined; // a bare host[:port], nothing a URL would strip
    try {
      return new URL(`${pub.protocol}//${host}`).host;
    } catch {
      return undefined;
    }
  };
  const hosts = new Set([pub.host, ...o.allowedHosts].map((h) => normal(h) ?? h.toLowerCase()));
  const origins = new Set([pub.origin, ...o.allowedOrigins].map((h) => h.toLowerCase()));
  const local = loopbackNames.has(pub.hostname.toLowerCase());

  const hostPasses = (host: string) =>
    hosts.has(normal(host) ?? "") || (local && loopbackNames.has(hostnameOf(`http://${host}`) ?? ""));
  const originPasses = (origin: string) => {
    if (origins.has(origin.toLowerCase())) return true;
    if (!local || !/^https?:\/\//i.test(origin)) return false;
    return loopbackNames.has(hostnameOf(origin) ?? "");
  };

  return (host, origin) => {
    if (!host || !hostPasses(host)) return { header: "host", value: host ?? "" };
    if (origin !== undefined && !originPasses(origin)) return { header: "origin", value: origin };
    return undefined;
  };
}

/** The lower-case host name of a URL with nothing but scheme, host and port; undefined otherwise. */
function hostnameOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.username || u.password || u.pathname !== "/" || u.search || u.hash) return undefined;
    return u.hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
