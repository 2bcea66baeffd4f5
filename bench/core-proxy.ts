/**
 * Core's runner proxy alone, for the runner benchmark's "through core" paths: the same code core
 * serves `/<replId>/…` and the devex-repl-id header with (services/core/src/driver/local/proxy.ts,
 * HTTP/1.1 and WebSocket over HTTP/1.1, HTTP/2 over h2-forward.ts) on core's kind of port (lib/kit's
 * sniffing server), in a process of its own, forwarding every repl id to one runner.
 * Usage: node --import tsx bench/core-proxy.ts <runner url>; prints "listening on <url>".
 */
import { createLogger } from "../lib/kit/log.js";
import { startServer } from "../lib/kit/server.js";
import { createRunnerProxy } from "../services/core/src/driver/local/proxy.js";

const runnerUrl = process.argv[2];
const proxy = createRunnerProxy(() => ({ url: runnerUrl }), "api");
const server = await startServer({
  name: "core-proxy",
  port: 0,
  log: createLogger("core-proxy", { level: "warn" }),
  routes() {},
  http: proxy.http,
  upgrade: proxy.upgrade,
});
console.log(`listening on ${server.url}`);
process.on("SIGTERM", () => {
  proxy.close();
  void server.close().then(() => process.exit(0));
});
