/**
 * Each repl's previews are served on an origin of their own, `<replId>.<preview host>` (the
 * embedded setup: `http://<replId>.localhost:8081`, which browsers resolve to loopback; behind a
 * real host name, a wildcard DNS record). Origins, not paths, are what browsers isolate: on one
 * origin shared by every repl, a page of one repl's public preview could read another repl's
 * private preview with its visitor's cookie, or have core sign its visitor in there.
 */

const REPL_LABEL = /^(r[0-9a-f]{12})\./;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The preview origin of one repl below the operator's preview URL (DEVEX_PREVIEW_PUBLIC_URL). */
export function previewOriginFor(previewUrl: string, replId: string): string {
  const url = new URL(previewUrl);
  let host = url.hostname;
  const ip = IPV4.test(host) || host.startsWith("[");
  if (ip && (host.startsWith("127.") || host === "[::1]")) host = "localhost";
  else if (ip) {
    throw new Error(
      `the preview URL ${previewUrl} is an address: previews need a host name with a wildcard DNS record (*.${host} is not possible); set DEVEX_PREVIEW_PUBLIC_URL`,
    );
  }
  url.hostname = `${replId}.${host}`;
  return url.origin;
}

/** The repl a preview request names by its host (`<replId>.…`), or undefined. */
export function replOfPreviewHost(host: string | undefined): string | undefined {
  return REPL_LABEL.exec(host ?? "")?.[1];
}
