/**
 * WebSocket bridge to terminals: `GET /ws/terminals/<terminalId>` upgraded to a WebSocket.
 *
 *   Auth:    subprotocols ["devex.terminal.v1", "bearer.<token>"] (the runner echoes only
 *            "devex.terminal.v1"), or `?token=<token>`. Refused before the upgrade with HTTP 401
 *            (missing, invalid or expired token), 403 (another repl's token) or 404 (no such terminal).
 *   Start:   query parameters `replay=1` (replay the screen and scrollback, see mirror.ts), `cols=` and
 *            `rows=` (resize on attach, before the replay is taken, so it comes at the client's size).
 *   Frames:  binary frames carry raw bytes: client→runner input, runner→client output.
 *            Text frames carry protobuf-JSON: client→runner `AttachRequest` (`{"resize":{"cols":100,
 *            "rows":30}}` or `{"ack":"65536"}`; `{"input":"<base64>"}` works too), runner→client
 *            `AttachResponse` (`{"attached":{...}}` first, `{"exit":{...}}` last, then close 1000).
 *            `attached`, the replay and (for an exited terminal) `exit` follow the upgrade response
 *            at once: a client must listen for messages before the socket reports open.
 *   Flow:    like Attach (attach.ts): the terminal pauses while this client's unacknowledged output
 *            (once it sends acks) or the socket's unsent output is above the high watermark.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { type WebSocket, WebSocketServer } from "ws";
import { AttachRequestSchema, AttachResponseSchema } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerRoute, RunnerScope } from "../../../../lib/contracts/runner-access.js";
import { BEARER_SUBPROTOCOL_PREFIX, TERMINAL_SUBPROTOCOL } from "../../../../lib/contracts/terminal-socket.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import { sharedValidator } from "../../../../lib/kit/validate.js";
import type { ActivityTracker } from "../activity.js";
import type { RunnerAuth } from "../auth.js";
import { type AttachOptions, TerminalAttach } from "./attach.js";
import type { TerminalRegistry } from "./registry.js";
import type { TerminalSession } from "./session.js";

const TERMINAL_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface WsBridgeDeps {
  auth: RunnerAuth;
  terminals: TerminalRegistry;
  activity: ActivityTracker;
  log: Logger;
  /** Non-empty while the runner refuses new work. */
  draining: () => string | undefined;
}

const httpStatus: Record<string, [number, string]> = {
  unauthenticated: [401, "Unauthorized"],
  "permission-denied": [403, "Forbidden"],
  "not-found": [404, "Not Found"],
  unavailable: [503, "Service Unavailable"],
};

export function createWsBridge(d: WsBridgeDeps) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 2 * 1024 * 1024,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(TERMINAL_SUBPROTOCOL) ? TERMINAL_SUBPROTOCOL : false),
  });

  function refuse(socket: Duplex, err: unknown) {
    const [status, text] = (err instanceof DomainError && httpStatus[err.kind]) || [400, "Bad Request"];
    const body = `${err instanceof DomainError ? err.message : "bad request"}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  /** Upgrade handler: returns false for paths that are not terminal sockets. */
  return function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", "http://runner");
    if (!url.pathname.startsWith(RunnerRoute.terminalSocket)) return false;
    const terminalId = url.pathname.slice(RunnerRoute.terminalSocket.length);
    if (!TERMINAL_ID.test(terminalId)) return false;
    try {
      const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
      const bearer = offered
        .find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX))
        ?.slice(BEARER_SUBPROTOCOL_PREFIX.length);
      if (bearer && !offered.includes(TERMINAL_SUBPROTOCOL)) {
        throw new DomainError(
          "invalid-argument",
          `offer the "${TERMINAL_SUBPROTOCOL}" subprotocol with the bearer token`,
        );
      }
      d.auth.user(bearer ?? url.searchParams.get("token") ?? undefined, RunnerScope.terminals);
      const reason = d.draining();
      if (reason) throw new DomainError("unavailable", `runner is draining: ${reason}`);
      const session = d.terminals.get(terminalId);
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, session.id, url.searchParams));
    } catch (e) {
      refuse(socket, e);
    }
    return true;
  };

  function serve(ws: WebSocket, terminalId: string, params: URLSearchParams) {
    let session: TerminalSession;
    try {
      session = d.terminals.get(terminalId);
    } catch {
      ws.close(4404, "terminal is gone");
      return;
    }
    const client = new TerminalAttach(session, d.activity);
    const left = new AbortController();
    const streamDone = d.activity.streamOpened();
    ws.on("message", (data, isBinary) => {
      try {
        if (isBinary) client.input(toBuffer(data));
        else client.apply(parseClientFrame(data));
      } catch (e) {
        ws.close(4400, `bad frame: ${(e as Error).message}`.slice(0, 120));
      }
    });
    ws.on("close", () => {
      left.abort();
      streamDone();
    });
    ws.on("error", (err) => d.log.debug({ err }, "terminal websocket error"));
    const cols = Number(params.get("cols"));
    const rows = Number(params.get("rows"));
    sendFrames(ws, client, {
      replay: params.get("replay") === "1" || params.get("replay") === "true",
      size: cols > 0 && rows > 0 ? { cols, rows } : undefined,
      signal: left.signal,
      writer: {
        // Once the socket is closing, ws counts whatever it is sent into bufferedAmount for good: a
        // client that sent its close and then went quiet would hold the terminal paused for every
        // other client until ws's close timeout. Output to a socket no longer open is dropped.
        write: (data, sent) => (ws.readyState === ws.OPEN ? ws.send(data, { binary: true }, () => sent()) : sent()),
        backlog: () => (ws.readyState === ws.OPEN ? ws.bufferedAmount : 0),
      },
    }).catch((err) => {
      d.log.warn({ err }, "terminal websocket frames failed");
      ws.terminate();
    });
  }

  function parseClientFrame(data: WebSocket.RawData) {
    const msg = fromJsonString(AttachRequestSchema, toBuffer(data).toString("utf8"));
    const result = sharedValidator().validate(AttachRequestSchema, msg);
    if (result.kind !== "valid") throw new Error(result.kind === "invalid" ? result.violations.join("; ") : "invalid");
    return msg;
  }
}

/**
 * `attached` and `exit` as protobuf-JSON text frames (output goes to the socket through the writer as
 * binary frames); closes with 1000 after `exit`.
 */
async function sendFrames(ws: WebSocket, client: TerminalAttach, options: AttachOptions): Promise<void> {
  for await (const frame of client.frames(options)) {
    // Resolves once the socket took the frame (or failed to: a closed socket ends the frames anyway).
    const json = toJsonString(AttachResponseSchema, create(AttachResponseSchema, { frame }));
    await new Promise<void>((resolve) => ws.send(json, { binary: false }, () => resolve()));
    if (frame.case === "exit") ws.close(1000, "terminal exited");
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
