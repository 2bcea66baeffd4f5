/**
 * The web client's static files (web/dist), mounted on core's `web` hook: GET/HEAD requests no other
 * route took. Paths that name no file get index.html (the client routes in the browser), except
 * those that look like a file (an extension) or an RPC (`/package.Service/Method`), which get 404. Hashed assets under
 * /assets/ are cached for a year; everything else is revalidated. `/web-config.json` tells the page
 * how to sign in and whether a session cookie is present. Paths are confined to the folder (no "..", no NUL, no symlinks out of it).
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { extname, join, sep } from "node:path";
import { readCookie } from "../../../lib/kit/cookies.js";
import type { HttpHandler } from "../../../lib/kit/server.js";
import { SESSION_COOKIE } from "./auth/cookies.js";

export interface WebStaticOptions {
  /** The built client (web/dist). */
  dir: string;
  /** What the login page needs to know. */
  config: { github: boolean };
}

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export function createWebStatic(options: WebStaticOptions): HttpHandler {
  let root: Promise<string> | undefined;
  const rootDir = () => {
    root ??= realpath(options.dir);
    return root;
  };

  async function resolveFile(path: string): Promise<string | undefined> {
    const base = await rootDir();
    const full = join(base, path);
    if (full !== base && !full.startsWith(base + sep)) return undefined;
    try {
      const real = await realpath(full);
      if (!real.startsWith(base + sep)) return undefined;
      return (await stat(real)).isFile() ? real : undefined;
    } catch {
      return undefined;
    }
  }

  return async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://core").pathname);
    } catch {
      return false;
    }
    if (path.includes("\0") || path.split("/").includes("..")) return false;
    if (path === "/web-config.json") {
      // Whether a session cookie is present (not whether it is valid): the page skips the
      // GetCurrentUser call, and its 401, when there is certainly no session.
      const session = readCookie(req.headers.cookie, SESSION_COOKIE) !== undefined;
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ ...options.config, session }));
      return true;
    }
    let file = path === "/" ? undefined : await resolveFile(path);
    if (!file) {
      // Client-side routes get the page; missing files and API-looking paths stay 404.
      if (extname(path) || path.split("/")[1]?.includes(".")) return false;
      file = await resolveFile("index.html");
      if (!file) return false;
    }
    const info = await stat(file);
    const hashed = path.startsWith("/assets/");
    res.writeHead(200, {
      "content-type": types[extname(file)] ?? "application/octet-stream",
      "content-length": String(info.size),
      "cache-control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      ...(extname(file) === ".html" ? { "x-frame-options": "SAMEORIGIN", "referrer-policy": "same-origin" } : {}),
    });
    if (req.method === "HEAD") {
      res.end();
      return true;
    }
    await new Promise<void>((resolve) => {
      const stream = createReadStream(file);
      stream.on("error", () => {
        (res as NodeJS.WritableStream).end();
        resolve();
      });
      stream.on("end", () => resolve());
      stream.pipe(res as NodeJS.WritableStream);
    });
    return true;
  };
}
