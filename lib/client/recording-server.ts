/**
 * For lib/client's tests: a real server on the kit (TCP, a Unix socket, or both) serving the
 * services the client layer reaches, each call recorded as the server saw it (authorization header,
 * content type), so a test asserts what a transport really sent.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { createLogger } from "../kit/log.js";
import { type RunningServer, startServer } from "../kit/server.js";

export interface RecordedCall {
  method: string;
  authorization: string | null;
  contentType: string | null;
}

export interface RecordingServer {
  server: RunningServer;
  calls: RecordedCall[];
  close(): Promise<void>;
}

/** Records `ctx`'s call; handlers call this first. */
export type RecordCall = (ctx: HandlerContext) => void;

export async function startRecordingServer(
  routes: (router: ConnectRouter, record: RecordCall) => void,
  listen: { socket?: boolean; tcp?: boolean } = {},
): Promise<RecordingServer> {
  const calls: RecordedCall[] = [];
  const record: RecordCall = (ctx) =>
    calls.push({
      method: ctx.method.name,
      authorization: ctx.requestHeader.get("authorization"),
      contentType: ctx.requestHeader.get("content-type"),
    });
  const dir = listen.socket ? await mkdtemp(join(tmpdir(), "devex-client-")) : undefined;
  const server = await startServer({
    name: "client-test",
    port: 0,
    log: createLogger("client-test", { level: "silent" }),
    routes: (router) => routes(router, record),
    socketPath: dir && join(dir, "s.sock"),
    tcp: listen.tcp ?? true,
  });
  return {
    server,
    calls,
    async close() {
      await server.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
