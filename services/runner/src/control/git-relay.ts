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
import { pickHeaders, relayRequest } from "../../../../lib/kit/http-exchange.js";
import type { Logger } from "../../../../lib/kit/log.js";

const KEY_HEADER = "devex-relay-key";
const KEY_VARIABLE = "DEVEX_GIT_RELAY_KEY";
/** A request to core (or a client) that moves nothing for this long is cut. */
const IDLE_MS = 5 * 60_000;

/**
 * Git runs it as `sh -c '<this> get'` (or store, erase: ignored). Bash's /dev/tcp reaches the relay
 * without any other program; the body of the HTTP/1.0 answer is git's credential format. The key
 * comes from the environment, not the command line, which other local users see. Without a
 * credential it says quit=1, so that git fails at once instead of asking for a user name.
 */
const helperFor = (port: number) =>
  [
    `!bash -c 'test "$1" = get || exit 0`,
    `exec 3<>/dev/tcp/127.0.0.1/${port} 2>/dev/null || { echo quit=1; exit 0; }`,
    `printf "GET /credential HTTP/1.0\\r\\n${KEY_HEADER}: %s\\r\\n\\r\\n" "$${KEY_VARIABLE}" >&3`,
    `IFS= read -r status <&3`,
    `case "$status" in *" 200 "*) ;; *) echo quit=1; exit 0;; esac`,
    `while IFS= read -r line <&3 && [ \${#line} -gt 1 ]; do :; done`,
    `cat <&3' devex-git-credential`,
  ].join("; ");

/**
 * Git's requests as the insteadOf entries below make them: `/git/<replId>/<b|g><suffix>/<rest>`,
 * b and g standing for the repository's URL without and with ".git". A suffix is what git's prefix
 * match left over: another repository whose name starts like this one's (app-docs, app.js).
 */
const RELAYED = /^\/git\/([a-z0-9-]+)\/([bg])([A-Za-z0-9._-]*)\/(.*)$/;
/** What core's route takes: git's smart HTTP for this one repository. */
const SMART_HTTP: Record<string, string> = {
  "info/refs?service=git-upload-pack": "GET",
  "info/refs?service=git-receive-pack": "GET",
  "git-upload-pack": "POST",
  "git-receive-pack": "POST",
};

/** Request headers git's smart HTTP needs; nothing else passes. */
const FORWARDED = ["authorization", "content-type", "content-encoding", "content-length", "accept", "git-protocol"];

export interface GitRelay {
  port: number;
  /** Git configuration for the environment of a process, after the user's own (GIT_CONFIG_COUNT). */
  environment(env: Readonly<Record<string, string>>): Record<string, string>;
  close(): Promise<void>;
}

export interface GitRelayDeps {
  core: { url: string; socketPath?: string };
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  /** The repository core reaches with the owner's grant, as core last said (none: the relay is unused). */
  remote: () => GitRemote | undefined;
  log: Logger;
}

export async function startGitRelay(d: GitRelayDeps): Promise<GitRelay> {
  const key = randomBytes(32).toString("hex");
  const keyed = (req: IncomingMessage) => {
    const given = Buffer.from(String(req.headers[KEY_HEADER] ?? ""));
    return given.length === key.length && timingSafeEqual(given, Buffer.from(key));
  };

  /** A repository that only starts like this one's: back to its own URL, which git fetches itself. */
  function elsewhere(res: ServerResponse, withGit: boolean, suffix: string, rest: string) {
    const remote = d.remote();
    if (!remote) return res.writeHead(404).end();
    const bare = remote.url.replace(/\.git$/, "");
    res.writeHead(302, { location: `${withGit ? `${bare}.git` : bare}${suffix}/${rest}` }).end();
  }

  const server = createServer((req, res) => {
    req.setTimeout(IDLE_MS, () => req.destroy());
    const url = req.url ?? "";
    const m = RELAYED.exec(url);
    if (req.method === "GET" && url === "/credential") {
      if (keyed(req)) void answerCredential(d, res);
      else res.writeHead(403).end();
    } else if (m && m[1] === d.replId && m[3] !== "") {
      elsewhere(res, m[2] === "g", m[3], m[4]);
    } else if (m && m[1] === d.replId && SMART_HTTP[m[4]] === req.method) {
      void forwardToCore(d, req, res, m[4]);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    environment(env) {
      const remote = d.remote();
      return remote ? gitEnvironment({ port, replId: d.replId, key }, remote, env) : {};
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function answerCredential(d: GitRelayDeps, res: ServerResponse) {
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

async function forwardToCore(d: GitRelayDeps, req: IncomingMessage, res: ServerResponse, rest: string) {
  const coreUrl = new URL(d.core.url);
  const corePath = coreUrl.pathname.replace(/\/+$/, "");
  const target = {
    method: req.method,
    // Rebuilt from what was checked, never the request's own path.
    path: `${corePath}/git/${d.replId}/${rest}`,
    headers: pickHeaders(req.headers, FORWARDED),
    ...(d.core.socketPath
      ? { socketPath: d.core.socketPath }
      : { host: coreUrl.hostname, port: coreUrl.port || undefined }),
  };
  const upstream = (coreUrl.protocol === "https:" ? httpsRequest : httpRequest)(target);
  try {
    const up = await relayRequest(req, res, upstream, IDLE_MS);
    const back: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) if (typeof v === "string" && k !== "connection") back[k] = v;
    res.writeHead(up.statusCode ?? 502, back);
    await pipeline(up, res);
  } catch (err) {
    d.log.warn({ err: (err as Error).message }, "git relay: core could not be reached");
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("core could not be reached\n");
    else res.destroy();
  }
}

/** The git configuration of a process's environment: the repository to the relay, the relay's helper. */
function gitEnvironment(
  relay: { port: number; replId: string; key: string },
  remote: GitRemote,
  env: Readonly<Record<string, string>>,
): Record<string, string> {
  const route = `http://127.0.0.1:${relay.port}/git/${relay.replId}`;
  const bare = remote.url.replace(/\.git$/, "");
  const entries: [string, string][] = [
    // Both spellings of the repository's URL, told apart (b, g) so that what git's prefix match
    // leaves over (another repository's name: app-docs) goes back to where it was.
    [`url.${route}/b.insteadOf`, bare],
    [`url.${route}/g.insteadOf`, `${bare}.git`],
    // An empty helper first clears any the user configured (a `store` would write the token to disk).
    [`credential.http://127.0.0.1:${relay.port}.helper`, ""],
    [`credential.http://127.0.0.1:${relay.port}.helper`, helperFor(relay.port)],
  ];
  const first = Math.max(0, Number.parseInt(env.GIT_CONFIG_COUNT ?? "0", 10) || 0);
  const out: Record<string, string> = { [KEY_VARIABLE]: relay.key, GIT_CONFIG_COUNT: String(first + entries.length) };
  entries.forEach(([name, value], i) => {
    out[`GIT_CONFIG_KEY_${first + i}`] = name;
    out[`GIT_CONFIG_VALUE_${first + i}`] = value;
  });
  return out;
}
