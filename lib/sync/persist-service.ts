/**
 * The persist sidecar of a Kubernetes repl pod (`sync/cli.mjs serve`): it persists the repl's trees
 * every interval, so a node that dies loses at most that much, and on core's request before a stop
 * (POST /persist), which answers once a persist that began after the request has finished, with its
 * counts. It alone in the pod holds the blob store's credentials: the repl's processes run in
 * another container, and reach its port but not its environment; the request needs a token that
 * only core can sign (audience "runner-admin", this repl). One persist at a time, never two racing
 * on one manifest.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { bearerToken, type TokenVerifier } from "../kit/tokens.js";

export interface PersistServiceOptions {
  /**
   * One persist of the repl's trees (cli.ts runSync), its counts as the result. "watched" (core's
   * request for a running repl's checkpoint, `?how=watched`) may skip the walk of a tree that did
   * not change (TreeWatch); "full" (periodic, and core's request before a stop) walks.
   */
  persist: (how: "watched" | "full") => Promise<{ files: number; transferred: number; deleted: number }>;
  /** Between the end of one periodic persist and the start of the next. */
  intervalMs: number;
  host: string;
  port: number;
  verifier: TokenVerifier;
  replId: string;
  /** One line per event (a persist's failure, the periodic ones' counts). */
  say: (line: string) => void;
}

export interface PersistService {
  port: number;
  close(): Promise<void>;
}

export async function servePersist(o: PersistServiceOptions): Promise<PersistService> {
  let last: Promise<unknown> = Promise.resolve();
  /** Queues a persist after whatever is running, so a request's persist starts after the request. */
  const persistNow = (how: "watched" | "full") => {
    const next = last.catch(() => {}).then(() => o.persist(how));
    last = next;
    return next;
  };

  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const periodic = () => {
    timer = setTimeout(async () => {
      try {
        const r = await persistNow("full");
        if (r.transferred || r.deleted) o.say(`periodic persist: ${r.transferred} uploaded, ${r.deleted} deleted`);
      } catch (err) {
        o.say(`periodic persist failed: ${(err as Error).message}`);
      }
      if (!closed) periodic();
    }, o.intervalMs);
  };
  periodic();

  const authorized = (req: IncomingMessage) => {
    try {
      o.verifier.verify(bearerToken(req.headers.authorization) ?? "", { aud: "runner-admin", repl: o.replId });
      return true;
    } catch {
      return false;
    }
  };
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") return json(res, 200, { ok: true });
    const how = req.url === "/persist" ? "full" : req.url === "/persist?how=watched" ? "watched" : undefined;
    if (req.method !== "POST" || !how) return json(res, 404, { error: "not found" });
    if (!authorized(req)) return json(res, 401, { error: "a token of core's for this repl is needed" });
    persistNow(how).then(
      (result) => json(res, 200, result),
      (err) => {
        o.say(`persist failed: ${(err as Error).message}`);
        json(res, 500, { error: (err as Error).message });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      closed = true;
      clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await last.catch(() => {});
    },
  };
}
