/**
 * How a repl pod proves to the cluster's egress proxy (services/egress) which repl it is: HTTP
 * Proxy-Authorization Basic `<replId>:<token>`, the token an HMAC-SHA256 of the repl id under a
 * secret that core and the proxy share (a Kubernetes Secret). Core puts the credential in the pod's
 * HTTP(S)_PROXY; the proxy recomputes it. One definition for both sides.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export function egressProxyToken(secret: string, replId: string): string {
  return createHmac("sha256", secret).update(`devex-egress:${replId}`).digest("hex");
}

/** The repl a Proxy-Authorization header proves, or undefined when it is missing or wrong. */
export function egressProxyRepl(secret: string, header: string | undefined): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) return undefined;
  const replId = text.slice(0, colon);
  const given = Buffer.from(text.slice(colon + 1));
  const expected = Buffer.from(egressProxyToken(secret, replId));
  return given.length === expected.length && timingSafeEqual(given, expected) ? replId : undefined;
}
