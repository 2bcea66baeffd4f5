/**
 * HTTP/2 requests to a runner, forwarded over HTTP/2: what gRPC needs (trailers, bidi streams,
 * cancellation) and Connect over HTTP/2 gets too. One client session per runner (TCP or its Unix
 * socket), reused by every stream to it, with large flow-control windows so a terminal's output is
 * not held to 64 KiB in flight. Each stream is piped both ways without buffering (flow control is
 * each side's own), its trailers passed on, and a cancel on either side (RST_STREAM) cancels the
 * other. The runner authenticates every call itself.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
  type OutgoingHttpHeaders,
} from "node:http2";
import { connect as netConnect } from "node:net";
import { pipeline } from "node:stream";
import type { RunnerTarget } from "./runner-handle.js";

const WINDOW = 8 * 1024 * 1024;
/** A session with no stream for this long is closed (a runner's next stream opens a new one). */
const IDLE_MS = 60_000;

export interface H2Forward {
  /**
   * Forwards the request to the runner as `path` with `headers`: the request's own, already
   * cleaned of hop-by-hop ones and of what core keeps to itself (its cookie, the routing header;
   * proxy.ts's forwardHeaders). `mapResponse` may rewrite response headers (cookie paths, redirects).
   */
  forward(
    req: Http2ServerRequest,
    res: Http2ServerResponse,
    target: RunnerTarget,
    path: string,
    headers: OutgoingHttpHeaders,
    mapResponse?: (headers: OutgoingHttpHeaders) => OutgoingHttpHeaders,
  ): void;
  close(): void;
}

export function createH2Forward(): H2Forward {
  const sessions = new Map<string, ClientHttp2Session>();

  function sessionFor(target: RunnerTarget): ClientHttp2Session {
    const key = target.socketPath ?? target.url;
    const open = sessions.get(key);
    if (open && !open.closed && !open.destroyed) return open;
    const session = connect(target.url, {
      settings: { initialWindowSize: WINDOW },
      ...(target.socketPath && { createConnection: () => netConnect(target.socketPath as string) }),
    });
    session.on("connect", () => session.setLocalWindowSize(WINDOW));
    const forget = () => {
      if (sessions.get(key) === session) sessions.delete(key);
    };
    session.on("close", forget);
    session.on("goaway", forget);
    session.on("error", forget);
    session.setTimeout(IDLE_MS, () => session.close());
    session.unref();
    sessions.set(key, session);
    return session;
  }

  return {
    forward(req, res, target, path, headers, mapResponse = (h) => h) {
      const outgoing: OutgoingHttpHeaders = {
        ...headers,
        [constants.HTTP2_HEADER_METHOD]: req.method,
        [constants.HTTP2_HEADER_PATH]: path,
        [constants.HTTP2_HEADER_SCHEME]: "http",
        [constants.HTTP2_HEADER_AUTHORITY]: new URL(target.url).host,
      };
      let upstream: ClientHttp2Stream;
      try {
        upstream = sessionFor(target).request(outgoing);
      } catch {
        refuse(res);
        return;
      }
      // Whichever side leaves first takes the other with it, with its reason.
      res.on("close", () => {
        if (!upstream.closed) upstream.close(res.stream.rstCode ?? constants.NGHTTP2_CANCEL);
      });
      upstream.on("close", () => {
        if (res.stream.closed) return;
        if (!res.headersSent) refuse(res);
        else if (upstream.rstCode !== undefined && upstream.rstCode !== constants.NGHTTP2_NO_ERROR) {
          res.stream.close(upstream.rstCode);
        }
      });
      upstream.on("error", () => {}); // reported by "close" above
      upstream.on("response", (h: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
        const status = Number(h[constants.HTTP2_HEADER_STATUS] ?? 502);
        res.writeHead(status, mapResponse(withoutPseudo(h)));
        pipeline(upstream, res, () => {});
      });
      upstream.on("trailers", (t: IncomingHttpHeaders) => res.addTrailers(withoutPseudo(t)));
      pipeline(req, upstream, () => {});
    },
    close() {
      for (const s of sessions.values()) s.destroy();
      sessions.clear();
    },
  };
}

function withoutPseudo(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(":")) out[k] = v;
  return out;
}

function refuse(res: Http2ServerResponse) {
  if (res.headersSent) {
    res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  res.writeHead(502, { "content-type": "text/plain" });
  res.end("the repl's runner did not answer\n");
}
