/**
 * A git server on loopback for tests: git's own `git http-backend` (smart HTTP, protocol v2) behind
 * a small node:http server, serving the bare repositories under one temp dir at
 * `http://127.0.0.1:<port>/<name>.git`. Repositories listed in `authenticated` answer 401 unless the
 * request carries HTTP Basic credentials with the given password (whatever the user name, as GitHub
 * takes `x-access-token:<token>`). `other` answers what it takes first (a fake GitHub's API).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestGitServer {
  url: string;
  root: string;
  /** Runs git in a repository (a work tree under root/work/<name>, or a bare one). */
  git(cwd: string, ...args: string[]): string;
  /** Makes a bare repository `<name>.git` from commits made by `build` in a work tree; returns the work tree. */
  repository(name: string, build: (work: string, git: (...args: string[]) => string) => Promise<void>): Promise<string>;
  close(): Promise<void>;
}

const gitEnv = (home: string) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: home,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
});

export async function startGitServer(
  authenticated: Record<string, string> = {},
  other?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<TestGitServer> {
  const root = await mkdtemp(join(tmpdir(), "devex-git-"));
  const env = gitEnv(root);
  const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, env }).toString();
  const server = createServer((req, res) => {
    if (other?.(req, res)) return;
    const name = /^\/((?:[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_-]+\.git)\//.exec(req.url ?? "")?.[1];
    const password = name ? authenticated[name] : undefined;
    if (password !== undefined && !hasPassword(req, password)) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
      return;
    }
    backend(root, env, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    root,
    git,
    async repository(name, build) {
      const work = join(root, "work", name);
      execFileSync("mkdir", ["-p", work]);
      git(work, "init", "-q", "-b", "main");
      await build(work, (...args) => git(work, ...args));
      const bare = join(root, `${name}.git`);
      git(root, "clone", "-q", "--bare", work, bare);
      // As GitHub does: a commit can be fetched by its id when a ref reaches it.
      git(bare, "config", "uploadpack.allowReachableSHA1InWant", "true");
      git(bare, "config", "http.receivepack", "true");
      return work;
    },
    async close() {
      await closeServer(server);
      await rm(root, { recursive: true, force: true });
    },
  };
}

function hasPassword(req: IncomingMessage, password: string): boolean {
  const m = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
  if (!m) return false;
  const decoded = Buffer.from(m[1], "base64").toString();
  return decoded.slice(decoded.indexOf(":") + 1) === password;
}

/** CGI: the request to `git http-backend`, its headers and body back. */
function backend(root: string, env: Record<string, string>, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://x");
  const child = spawn("git", ["http-backend"], {
    env: {
      ...env,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      REMOTE_USER: "test",
      REMOTE_ADDR: "127.0.0.1",
    },
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let sent = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (sent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString().split("\r\n")) {
      const [k, ...v] = line.split(":");
      if (k.toLowerCase() === "status") status = Number.parseInt(v.join(":").trim(), 10);
      else headers[k] = v.join(":").trim();
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
    sent = true;
  });
  child.on("close", () => {
    if (!sent) res.writeHead(500).end();
    else res.end();
  });
  child.on("error", () => res.destroy());
}

async function closeServer(server: Server) {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Writes `files` (path → content) into a work tree. */
export async function writeFiles(work: string, files: Record<string, string | Buffer>) {
  for (const [path, body] of Object.entries(files)) {
    execFileSync("mkdir", ["-p", join(work, path, "..")]);
    await writeFile(join(work, path), body);
  }
}
