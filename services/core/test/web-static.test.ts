/** The web client's static files: content types, cache headers, SPA fallback, and no way out of the folder. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWebStatic } from "../src/web-static.js";

describe("web client static files", () => {
  let dir: string;
  let server: Server;
  let base: string;
  const raw = async (path: string, method = "GET") => {
    // fetch() normalises "..": speak HTTP by hand for the traversal cases.
    const { request } = await import("node:http");
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${base}/`, { method, path }, (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-web-"));
    await mkdir(join(dir, "dist", "assets"), { recursive: true });
    await writeFile(join(dir, "dist", "index.html"), "<!doctype html><title>app</title>");
    await writeFile(join(dir, "dist", "assets", "app-abc123.js"), "console.log(1)");
    await writeFile(join(dir, "secret.txt"), "do not serve");
    await symlink(join(dir, "secret.txt"), join(dir, "dist", "link.txt"));
    const handler = createWebStatic({ dir: join(dir, "dist"), config: { github: true } });
    server = createServer(async (req, res) => {
      if (!(await handler(req, res))) {
        res.writeHead(404);
        res.end("api 404");
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves index.html for / and client routes, revalidated", async () => {
    for (const path of ["/", "/repls/r0123456789ab"]) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(res.headers.get("cache-control"), "no-cache");
      assert.match(await res.text(), /<title>app/);
    }
  });

  it("serves hashed assets with a long cache and the right type", async () => {
    const res = await fetch(`${base}/assets/app-abc123.js`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(res.headers.get("cache-control") ?? "", /immutable/);
    const head = await fetch(`${base}/assets/app-abc123.js`, { method: "HEAD" });
    assert.equal(head.status, 200);
  });

  it("tells the login page how to sign in", async () => {
    assert.deepEqual(await (await fetch(`${base}/web-config.json`)).json(), { github: true, session: false });
    const withCookie = await fetch(`${base}/web-config.json`, { headers: { cookie: "a=b; devex_session=xyz" } });
    assert.deepEqual(await withCookie.json(), { github: true, session: true });
  });

  it("leaves missing files, API paths and other methods to the next handler", async () => {
    assert.equal((await fetch(`${base}/assets/missing.js`)).status, 404);
    assert.equal((await fetch(`${base}/devex.core.v1.ReplService/ListRepls`)).status, 404);
    assert.equal((await fetch(`${base}/`, { method: "POST" })).status, 404);
  });

  it("never serves a file outside the folder", async () => {
    for (const path of [
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/link.txt",
      "/a%00b",
    ]) {
      const res = await raw(path);
      assert.notEqual(res.body, "do not serve", path);
      assert.ok(res.status === 404 || res.body.includes("<title>app"), `${path}: ${res.status}`);
    }
  });
});
