/**
 * Core's git route: git inside a repl fetches from and pushes to the repl's GitHub repository
 * through `/git/<replId>/…` (the runner's relay brings it here), and core adds the owner's GitHub
 * grant on the way out, so the grant never enters the repl. Git authenticates with HTTP Basic, the
 * password a token from RunnerControlService.GetGitCredential (audience "git"): valid for one repl,
 * minutes long, with "push" only where the owner allowed it. Only git's smart-HTTP requests for
 * that one repository pass (info/refs, git-upload-pack, git-receive-pack); bodies stream both ways.
 */

import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetGitCredentialResponse,
  GetGitCredentialResponseSchema,
  type GitRemote,
  GitRemoteSchema,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import { DomainError, failedPrecondition } from "../../../../lib/kit/errors.js";
import { pickHeaders, relayRequest } from "../../../../lib/kit/http-exchange.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import type { TokenVerifier } from "../../../../lib/kit/tokens.js";
import { Credential } from "../audit/event.js";
import { type RouteAudit, recordRoute } from "../audit/routes.js";
import type { ReplRecord } from "../state/store.js";
import type { ReplDeps } from "./deps.js";
import { grantOf, onGitHub } from "./github.js";

const CREDENTIAL_TTL_SECONDS = 15 * 60;
/** A request to the repository that moves nothing for this long is cut. */
const IDLE_MS = 5 * 60_000;
const ROUTE = /^\/git\/([a-z0-9]([a-z0-9-]*[a-z0-9])?)\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const SERVICES = new Set(["git-upload-pack", "git-receive-pack"]);
/** Request headers git's smart HTTP needs upstream; nothing else of the repl's passes. */
const FORWARDED = ["content-type", "content-encoding", "content-length", "accept", "git-protocol"];
const RETURNED = ["content-type", "content-encoding", "cache-control", "expires", "pragma"];

/** Core's route for a repl's repository, as runners name it. */
export const gitRoutePath = (replId: string) => `/git/${replId}`;

/** What WatchEnvironment tells the runner about the repl's repository, when it has one reached with a grant. */
export function gitRemoteOf(r: ReplRecord): GitRemote | undefined {
  if (!r.git?.githubGrant) return undefined;
  return create(GitRemoteSchema, { url: r.git.url.replace(/\/+$/, ""), path: gitRoutePath(r.replId) });
}

/** GetGitCredential: a token for git in this repl, for its repository only. */
export function gitCredentialFor(deps: ReplDeps, r: ReplRecord | undefined): GetGitCredentialResponse {
  if (!r?.git?.githubGrant) throw failedPrecondition("this repl has no repository reached with a GitHub grant");
  const scope = r.git.allowPush ? ["fetch", "push"] : ["fetch"];
  const now = Date.now();
  const token = deps.signer.mint({ aud: "git", sub: r.owner, repl: r.replId, scope }, CREDENTIAL_TTL_SECONDS, now);
  return create(GetGitCredentialResponseSchema, {
    username: "devex",
    password: token,
    expireTime: timestampFromMs(now + CREDENTIAL_TTL_SECONDS * 1000),
  });
}

function answer(res: HttpResponse, status: number, text: string, headers: Record<string, string> = {}) {
  // Git shows a text/plain body of a refused request to the user ("remote: …").
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(`${text}\n`);
}

const basicPassword = (authorization: string | undefined) => {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization ?? "");
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], "base64").toString();
  return decoded.slice(decoded.indexOf(":") + 1);
};

export function createGitRoute(deps: ReplDeps, verifier: TokenVerifier, audit?: RouteAudit): HttpHandler {
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://core");
    if (!url.pathname.startsWith("/git/")) return false;
    const route = ROUTE.exec(url.pathname);
    const service = route?.[3] === "info/refs" ? url.searchParams.get("service") : route?.[3];
    const method = route?.[3] === "info/refs" ? "GET" : "POST";
    if (!route || !service || !SERVICES.has(service) || req.method !== method) {
      answer(res, 404, "not a git request this server answers");
      return true;
    }
    const replId = route[1];
    const password = basicPassword(req.headers.authorization);
    if (!password) {
      answer(res, 401, "credentials needed", { "www-authenticate": 'Basic realm="devex"' });
      return true;
    }
    let claims: ReturnType<TokenVerifier["verify"]>;
    try {
      claims = verifier.verify(password, { aud: "git", repl: replId });
    } catch (err) {
      const expired = err instanceof DomainError && err.kind === "unauthenticated";
      if (expired)
        answer(res, 401, "the credential expired or is invalid", { "www-authenticate": 'Basic realm="devex"' });
      else answer(res, 403, "this credential is for another repl's repository");
      return true;
    }
    const r = await deps.state.getRepl(replId);
    if (service === "git-receive-pack" && !(claims.scope.includes("push") && r?.git?.allowPush)) {
      answer(res, 403, "pushing from this repl is not allowed: its owner created it without allow_push");
      return true;
    }
    // A token taken out of a repl opens nothing once the repl stops; nor once the operator turns
    // GitHub access off or moves it to another host (the grant is that host's).
    const usable =
      r?.owner === claims.sub &&
      r.status === "running" &&
      r.git?.githubGrant &&
      deps.github &&
      onGitHub(deps.github, r.git.url);
    const token = usable ? await grantOf(deps.state, deps.secrets, r.owner) : undefined;
    if (!r?.git || !token) {
      answer(
        res,
        403,
        "the repl is not running, or its owner has no GitHub grant any more (sign in with GitHub again)",
      );
      return true;
    }
    // Rebuilt from what was checked: nothing else of the request's path or query goes to GitHub.
    const query = route[3] === "info/refs" ? `?service=${service}` : "";
    const status = await forward(req, res, `${r.git.url.replace(/\/+$/, "")}/${route[3]}${query}`, token, deps);
    // A push is the repl acting on the owner's repository with their grant: the audit log says so.
    if (route[3] === "git-receive-pack" && status === 200) {
      recordRoute(audit, req, {
        rpc: "git/push",
        userId: r.owner,
        replId,
        tokenId: Credential.git,
        details: { repository: r.git.url },
      });
    }
    return true;
  };
}

/** The request to the repository with the owner's grant; the answer back as it comes. Returns the status sent. */
async function forward(
  req: HttpRequest,
  res: HttpResponse,
  target: string,
  token: string,
  deps: ReplDeps,
): Promise<number> {
  const headers = {
    ...pickHeaders(req.headers, FORWARDED),
    authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`,
    "user-agent": "git/devex",
  };
  const send = target.startsWith("https:") ? httpsRequest : httpRequest;
  try {
    const up = await relayRequest(req as IncomingMessage, res, send(target, { method: req.method, headers }), IDLE_MS);
    if (up.statusCode === 401 || up.statusCode === 403 || up.statusCode === 404) {
      up.resume();
      answer(
        res,
        403,
        `GitHub refused the owner's grant for this repository (${up.statusCode}): it may have been revoked, or no longer reach the repository`,
      );
      return 403;
    }
    res.writeHead(up.statusCode ?? 502, pickHeaders(up.headers, RETURNED));
    await pipeline(up, res as NodeJS.WritableStream);
    return up.statusCode ?? 502;
  } catch (err) {
    deps.log.warn({ err: (err as Error).message }, "git route: the repository could not be reached");
    if (!res.headersSent) answer(res, 502, "the repository could not be reached; try again");
    else res.destroy();
    return 502;
  }
}
