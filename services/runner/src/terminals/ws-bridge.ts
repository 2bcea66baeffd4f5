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
 *   Flow:    like Attach: the terminal pauses while this client's unacknowledged output (once it
 *            sends acks) or the socket's unsent output is above the high watermark.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { type WebSocket, WebSocketServer } from "ws";
import { AttachRequestSchema, AttachResponseSchema } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { ActivityTracker } from "../activity.js";
import type { RunnerAuth } from "../auth.js";
import { handleClientFrame, terminalProto } from "../services/terminal-service.js";
import type { TerminalRegistry } from "./registry.js";
import type { Attachment, TerminalExitInfo } from "./session.js";

export const TERMINAL_SUBPROTOCOL = "devex.terminal.v1";
const PATH = /^\/ws\/terminals\/([A-Za-z0-9_-]{1,64})$/;

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
  const validator = createValidator();

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
    const m = PATH.exec(url.pathname);
    if (!m) return false;
    try {
      const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
      const bearer = offered.find((p) => p.startsWith("bearer."))?.slice("bearer.".length);
      if (bearer && !offered.includes(TERMINAL_SUBPROTOCOL)) {
        throw new DomainError(
          "invalid-argument",
          `offer the "${TERMINAL_SUBPROTOCOL}" subprotocol with the bearer token`,
        );
      }
      d.auth.user(bearer ?? url.searchParams.get("token") ?? undefined, "terminals");
      const reason = d.draining();
      if (reason) throw new DomainError("unavailable", `runner is draining: ${reason}`);
      const session = d.terminals.get(m[1]);
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, session.id, url.searchParams));
    } catch (e) {
      refuse(socket, e);
    }
    return true;
  };

  function serve(ws: WebSocket, terminalId: string, params: URLSearchParams) {
    let session: ReturnType<TerminalRegistry["get"]>;
    try {
      session = d.terminals.get(terminalId);
    } catch {
      ws.close(4404, "terminal is gone");
      return;
    }
    const streamDone = d.activity.streamOpened();
    const cols = Number(params.get("cols"));
    const rows = Number(params.get("rows"));
    if (cols > 0 && rows > 0) session.resize(cols, rows);
    const replay = params.get("replay") === "1" || params.get("replay") === "true";
    const sendText = (msg: Parameters<typeof create<typeof AttachResponseSchema>>[1]) =>
      ws.send(toJsonString(AttachResponseSchema, create(AttachResponseSchema, msg)));

    // One output frame in flight: what arrives meanwhile is merged into the next frame, so a
    // busy socket gets fewer, larger frames and an idle one gets each keystroke's echo at once.
    let attachment: Attachment | undefined;
    let started = false;
    let inflight = false;
    let parts: Buffer[] = [];
    let partsBytes = 0;
    let exitInfo: TerminalExitInfo | undefined;
    const pump = () => {
      if (!started || inflight || ws.readyState !== ws.OPEN) return;
      if (partsBytes > 0) {
        const frame = parts.length === 1 ? parts[0] : Buffer.concat(parts, partsBytes);
        parts = [];
        partsBytes = 0;
        inflight = true;
        ws.send(frame, { binary: true }, () => {
          inflight = false;
          attachment?.drained();
          pump();
        });
      } else if (exitInfo) {
        sendText({ frame: { case: "exit", value: exitInfo } });
        exitInfo = undefined;
        ws.close(1000, "terminal exited");
      }
    };
    const sink = {
      output: (data: Buffer) => {
        parts.push(data);
        partsBytes += data.length;
        pump();
      },
      exit: (e: TerminalExitInfo) => {
        exitInfo = e;
        pump();
      },
      transportBacklog: () => ws.bufferedAmount + partsBytes,
    };

    ws.on("message", (data, isBinary) => {
      try {
        if (isBinary) {
          d.activity.touch();
          session.write(toBuffer(data));
          return;
        }
        const msg = fromJsonString(AttachRequestSchema, toBuffer(data).toString("utf8"));
        const result = validator.validate(AttachRequestSchema, msg);
        if (result.kind !== "valid")
          throw new Error(result.kind === "invalid" ? result.violations.join("; ") : "invalid");
        handleClientFrame(session, msg, attachment, d.activity);
      } catch (e) {
        ws.close(4400, `bad frame: ${(e as Error).message}`.slice(0, 120));
      }
    });
    ws.on("close", () => {
      attachment?.detach();
      streamDone();
    });
    ws.on("error", (err) => d.log.debug({ err }, "terminal websocket error"));

    void session.attach(sink, replay).then((a) => {
      attachment = a;
      // The client left while the replay was taken.
      if (ws.readyState !== ws.OPEN) {
        a.detach();
        return;
      }
      sendText({
        frame: { case: "attached", value: { terminal: terminalProto(session), replayBytes: BigInt(a.replayBytes) } },
      });
      started = true;
      pump();
    });
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
