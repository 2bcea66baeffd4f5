/**
 * The git relay: how git inside the repl reaches the repl's repository when core holds the owner's
 * GitHub grant (core's repl/git-route.ts). The sandbox cannot reach core, and must not hold the
 * grant, so:
 *   - every process gets git configuration in its environment (GIT_CONFIG_COUNT, never a file):
 *     `url.<relay>/git/<replId>.insteadOf <repository URL>`, so fetch and push of that repository go
 *     to this relay on loopback, and a credential helper for the relay's URL only;
 *   - the helper (a few lines of bash) asks the relay's `/credential`, which asks core for a
 *     short-lived token for this repl's repository (RunnerControlService.GetGitCredential);
 *   - the relay forwards git's requests, bodies streamed, to core's route over the runner's own
 *     way to core (its Unix socket or URL); core checks the token and adds the grant.
 * Anything in the repl can use the relay, as it can use git: what it reaches is this one repository,
 * with what the owner allowed (fetch, and push with allow_push). `/credential` also wants the key
 * in the environment of the repl's processes (DEVEX_GIT_RELAY_KEY), for a runner that shares the
 * host's network (no private namespace), whose loopback other local users reach.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import type { GitRemote } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import type { Logger } from "../../../../lib/kit/log.js";

const KEY_HEADER = "devex-relay-key";
const KEY_VARIABLE = "DEVEX_GIT_RELAY_KEY";

/**
 * Git runs it as `sh -c '<this> get'` (or store, erase: ignored). Bash's /dev/tcp reaches the relay
 * without any other program; the HTTP/1.0 answer's body is git's credential format. The key comes
 * from the environment, not the command line, which other local users see.
 */
const helperFor = (port: number) =>
  `!bash -c 'test "$1" = get || exit 0; exec 3<>/dev/tcp/127.0.0.1/${port} || exit 0; printf "GET /credential HTTP/1.0\\r\\n${KEY_HEADER}: %s\\r\\n\\r\\n" "$${KEY_VARIABLE}" >&3; sed "1,/^\\r*$/d" <&3' devex-git-credential`;

/** Request headers git's smart HTTP needs; nothing else passes. */
const FORWARDED = ["authorization", "content-type", "content-encoding", "content-length", "accept", "git-protocol"];

export interface GitRelay {
  port: number;
  /** Git configuration for the environment of a process, after the user's own (GIT_CONFIG_COUNT). */
  environment(remote: GitRemote | undefined, env: Readonly<Record<string, string>>): Record<string, string>;
  close(): Promise<void>;
}

export async function startGitRelay(d: {
  core: { url: string; socketPath?: string };
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  log: Logger;
}): Promise<GitRelay> {
  const coreUrl = new URL(d.core.url);
  const corePath = coreUrl.pathname.replace(/\/+$/, "");
  const routePrefix = `/git/${d.replId}/`;
  const key = randomBytes(32).toString("hex");
  const keyed = (req: IncomingMessage) => {
    const given = Buffer.from(String(req.headers[KEY_HEADER] ?? ""));
    return given.length === key.length && timingSafeEqual(given, Buffer.from(key));
  };

  async function credential(res: ServerResponse) {
    try {
      const c = await d.client.getGitCredential(
        { replId: d.replId, runnerId: d.runnerId },
        { signal: AbortSignal.timeout(15_000) },
      );
      res.writeHead(200, { "content-type": "text/plain" }).end(`username=${c.username}\npassword=${c.password}\n`);
    } catch (err) {
      d.log.warn({ err: (err as Error).message }, "git relay: core gave no credential");
      res.writeHead(503).end();
    }
  }

  async function forward(req: IncomingMessage, res: ServerResponse) {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED) {
      const v = req.headers[name];
      if (typeof v === "string") headers[name] = v;
    }
    const target = {
      method: req.method,
      path: `${corePath}${req.url}`,
      headers,
      ...(d.core.socketPath
        ? { socketPath: d.core.socketPath }
        : { host: coreUrl.hostname, port: coreUrl.port || undefined }),
    };
    const upstream = (coreUrl.protocol === "https:" ? httpsRequest : httpRequest)(target);
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      upstream.once("response", resolve);
      upstream.once("error", reject);
    });
    try {
      const [, up] = await Promise.all([pipeline(req, upstream), answered]);
      const back: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers)) if (typeof v === "string" && k !== "connection") back[k] = v;
      res.writeHead(up.statusCode ?? 502, back);
      await pipeline(up, res);
    } catch (err) {
      upstream.destroy();
      d.log.warn({ err: (err as Error).message }, "git relay: core could not be reached");
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("core could not be reached\n");
      else res.destroy();
    }
  }

  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/credential") {
      if (keyed(req)) void credential(res);
      else res.writeHead(403).end();
    } else if (req.url?.startsWith(routePrefix)) void forward(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    environment(remote, env) {
      if (!remote) return {};
      const relay = `http://127.0.0.1:${port}`;
      const bare = remote.url.replace(/\.git$/, "");
      const entries: [string, string][] = [
        // Both spellings of the repository's URL; git takes the longest match.
        [`url.${relay}${remote.path}.insteadOf`, bare],
        [`url.${relay}${remote.path}.insteadOf`, `${bare}.git`],
        // An empty helper first clears any the user configured (a `store` would write the token to disk).
        [`credential.${relay}.helper`, ""],
        [`credential.${relay}.helper`, helperFor(port)],
      ];
      const first = Number.parseInt(env.GIT_CONFIG_COUNT ?? "0", 10) || 0;
      const out: Record<string, string> = { [KEY_VARIABLE]: key, GIT_CONFIG_COUNT: String(first + entries.length) };
      entries.forEach(([key, value], i) => {
        out[`GIT_CONFIG_KEY_${first + i}`] = key;
        out[`GIT_CONFIG_VALUE_${first + i}`] = value;
      });
      return out;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
