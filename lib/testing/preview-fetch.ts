/**
 * fetch() for preview URLs in tests: each repl's previews live on `<replId>.localhost:<port>`,
 * which browsers resolve to loopback by themselves and Node's resolver does not, so names under
 * `localhost` go to 127.0.0.1 here as they do in a browser. Sends the headers exactly as given
 * (fetch would set Sec-Fetch-Mode to "cors"), never follows redirects, and buffers the body.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request } from "node:http";

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** Resolves `*.localhost` to 127.0.0.1, as browsers do; anything else through the system. */
export function localhostLookup(host: string, options: { all?: boolean }, cb: LookupCallback): void {
  if (host === "localhost" || host.endsWith(".localhost")) {
    if (options.all) cb(null, [{ address: "127.0.0.1", family: 4 }]);
    else cb(null, "127.0.0.1", 4);
    return;
  }
  dnsLookup(host, options as never, cb as never);
}

export function previewFetch(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method ?? "GET", headers: init.headers, lookup: localhostLookup as never },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
          }
          const status = res.statusCode ?? 0;
          const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
          resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers }));
        });
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}
