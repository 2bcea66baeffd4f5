/**
 * One port per service. A plain TCP listener peeks at the first bytes of each connection: the
 * HTTP/2 connection preface ("PRI * HTTP/2.0...") goes to an h2c server (gRPC, Connect over HTTP/2),
 * anything else to an HTTP/1.1 server (Connect, gRPC-Web, WebSocket upgrades, /metrics, /healthz and
 * the service's own routes). Node's cleartext HTTP/2 server rejects HTTP/1.1, hence the sniffing.
 * With `socketPath` the same sniffing serves a Unix domain socket too (or instead of TCP with
 * `tcp: false`, when `url` is just `http://localhost` and clients connect through the socket).
 *
 * Every service gets the same interceptor chain: metrics → error boundary → the service's own (auth)
 * → protovalidate, and grpc.health.v1.Health.
 */

import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  createServer as createHttp2Server,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Duplex } from "node:stream";
import type { ConnectRouter, ContextValues, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { errorInterceptor } from "./errors.js";
import { withPartsStreams } from "./grpc-parts-handler.js";
import { createHealthService, HealthRegistry } from "./health.js";
import type { Logger } from "./log.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { withNodeRequest } from "./node-request.js";
import { validateInterceptor } from "./validate.js";

export type HttpRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** Extra HTTP route handler; returns true when it handled the request. */
export type HttpHandler = (req: HttpRequest, res: HttpResponse) => boolean | Promise<boolean>;
/** WebSocket (or other) upgrade handler; returns true when it took the socket. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

export interface ServerOptions {
  /** Service name, for logs and metrics. */
  name: string;
  port: number;
  /** Interface to bind; defaults to 127.0.0.1. */
  host?: string;
  log: Logger;
  /** Registers the service implementations. */
  routes: (router: ConnectRouter) => void;
  /** The service's own interceptors (typically authentication), run after the error boundary. */
  interceptors?: Interceptor[];
  contextValues?: (req: HttpRequest) => ContextValues;
  /** Routes that are not RPCs (OAuth callbacks, proxies, static files). Run before the 404. */
  http?: HttpHandler;
  upgrade?: UpgradeHandler;
  /** Largest request message accepted; defaults to 16 MiB. */
  readMaxBytes?: number;
  health?: HealthRegistry;
  /** How long a new connection may stay silent before it is dropped; defaults to 15 s. */
  sniffTimeoutMs?: number;
  /**
   * Also listen on this Unix domain socket (its folder is created, a stale file at the path replaced). Connections on it
   * are sniffed and served exactly like TCP ones. Clients reach it with `socketPath` (node:http,
   * connect-node's `nodeOptions`); the Host header is irrelevant.
   */
  socketPath?: string;
  /** The socket file's mode (e.g. 0o666 for clients running as another uid, such as sandboxed runners). */
  socketMode?: number;
  /** Listen on TCP `host:port` (default true; false needs `socketPath`). */
  tcp?: boolean;
}

export interface RunningServer {
  /** The TCP port; 0 when listening on the Unix socket only. */
  readonly port: number;
  /** http://host:port, or http://localhost when listening on the Unix socket only (connect through `socketPath`). */
  readonly url: string;
  /** The Unix socket listened on, if any. */
  readonly socketPath?: string;
  readonly health: HealthRegistry;
  readonly metrics: Registry;
  readonly http1: Server;
  readonly http2: Http2Server;
  /** Stops accepting connections, marks health NOT_SERVING and closes open connections. */
  close(): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const SNIFF_TIMEOUT_MS = 15_000;

/** What is not an RPC: /metrics, /healthz, then the service's own `http` hook, else 404. */
async function fallback(
  req: HttpRequest,
  res: HttpResponse,
  { options, metrics, health }: { options: ServerOptions; metrics: Metrics; health: HealthRegistry },
) {
  try {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      const body = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (req.method === "GET" && path === "/healthz") {
      const ok = health.get("") === 1;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok\n" : "not serving\n");
      return;
    }
    if (options.http && (await options.http(req, res))) return;
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  } catch (err) {
    options.log.error({ err }, "http handler failed");
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  }
}

/**
 * Hands a new connection to the HTTP/2 server if it starts with the h2 preface, else to the
 * HTTP/1.1 one (connect-node's h2c server refuses HTTP/1.1). A connection that never says which
 * protocol it speaks is dropped, so idle sockets cannot pile up.
 */
function routeByPreface(socket: Socket, http1: Server, http2: Http2Server, silentMs: number) {
  let seen = Buffer.alloc(0);
  const silent = setTimeout(() => socket.destroy(), silentMs);
  socket.once("close", () => clearTimeout(silent));
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && seen.length < PREFACE.length) return; // wait for the rest of the preface
    clearTimeout(silent);
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    if (isH2) {
      // The h2 session reads what is already buffered with socket.read() on the next tick; leave it paused.
      http2.emit("connection", socket);
    } else {
      http1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}

const listen = (server: NetServer, ...args: unknown[]) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => {
      server.off("error", reject);
      resolve();
    });
  });

/** Listens on TCP (unless `tcp: false`) and on the Unix socket if one is set; all or nothing. */
async function listenAll(options: ServerOptions, accept: (socket: Socket) => void) {
  const tcp = options.tcp ?? true;
  if (!tcp && !options.socketPath) throw new Error("startServer: tcp: false needs a socketPath");
  const listeners: NetServer[] = [];
  let port = 0;
  let url = "http://localhost";
  try {
    if (tcp) {
      const net = createNetServer({ noDelay: true }, accept);
      await listen(net, options.port, options.host ?? "127.0.0.1");
      listeners.push(net);
      const address = net.address();
      port = typeof address === "object" && address ? address.port : options.port;
      const host = options.host && options.host !== "0.0.0.0" && options.host !== "::" ? options.host : "127.0.0.1";
      url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    }
    if (options.socketPath) {
      await mkdir(dirname(options.socketPath), { recursive: true });
      await rm(options.socketPath, { force: true });
      const unix = createNetServer(accept);
      await listen(unix, options.socketPath);
      listeners.push(unix);
      if (options.socketMode !== undefined) await chmod(options.socketPath, options.socketMode);
    }
  } catch (err) {
    for (const l of listeners) l.close();
    throw err;
  }
  return { tcp, listeners, port, url };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { log } = options;
  const health = options.health ?? new HealthRegistry();
  const metrics = createMetrics(options.name);
  const adapterOptions: Parameters<typeof connectNodeAdapter>[0] = {
    routes(connectRouter) {
      // The adapter's options are the router's base, as connect-node made them (its default compression included).
      const router = withPartsStreams(connectRouter, adapterOptions);
      router.service(Health, createHealthService(health));
      options.routes(router);
    },
    // Metrics outermost, so they count the code the client gets (the error boundary's), not "unknown".
    interceptors: [metrics.interceptor, errorInterceptor(log), ...(options.interceptors ?? []), validateInterceptor()],
    // Each call's Node request, for the gRPC handler with parts (node-request.ts).
    contextValues: (req) => withNodeRequest(req, options.contextValues?.(req)),
    readMaxBytes: options.readMaxBytes ?? 16 * 1024 * 1024,
    fallback: (req, res) => void fallback(req, res as HttpResponse, { options, metrics, health }),
  };
  const handler = connectNodeAdapter(adapterOptions);

  const http1 = createHttpServer(handler);
  http1.keepAliveTimeout = 65_000;
  http1.on("upgrade", (req, socket, head) => {
    socket.on("error", () => socket.destroy());
    if (options.upgrade?.(req, socket, head)) return;
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  const http2 = createHttp2Server({}, handler);
  const sessions = new Set<ServerHttp2Session>();
  http2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });

  const sockets = new Set<Socket>();
  const accept = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    routeByPreface(socket, http1, http2, options.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
  };
  const { tcp, listeners, port, url } = await listenAll(options, accept);
  log.info(
    { port, host: tcp ? (options.host ?? "127.0.0.1") : undefined, socketPath: options.socketPath },
    `${options.name} listening on ${tcp ? url : ""}${tcp && options.socketPath ? " and " : ""}${options.socketPath ?? ""}`,
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    url,
    socketPath: options.socketPath,
    health,
    metrics: metrics.registry,
    http1,
    http2,
    close() {
      closing ??= (async () => {
        health.shutdown();
        const closed = Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
        for (const s of sessions) s.destroy();
        http1.closeAllConnections();
        for (const s of sockets) s.destroy();
        await closed;
        log.info(`${options.name} stopped`);
      })();
      return closing;
    },
  };
}
