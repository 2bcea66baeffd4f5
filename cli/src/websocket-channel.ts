/**
 * A terminal channel over the runner's WebSocket bridge (services/runner/src/terminals/ws-bridge.ts),
 * which core's /<replId>/ proxy carries over HTTP/1.1. Binary frames are bytes each way (output,
 * input); text frames are protobuf-JSON AttachResponse/AttachRequest frames (`attached`, `exit`;
 * `resize`, `ack`). The token travels as a subprotocol, never in the URL.
 */
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { type RawData, WebSocket } from "ws";
import { AttachRequestSchema, AttachResponseSchema } from "../../gen/devex/runner/v1/terminal_pb.js";
import type { RunnerSession } from "../../lib/client/runner-session.js";
import { terminalSocketProtocols } from "../../lib/contracts/terminal-socket.js";
import { CliError } from "./cli-error.js";
import { describeError, redact } from "./errors.js";
import { type OpenTerminalChannel, type RunnerFrame, refusal } from "./terminal-channel.js";

const codeOfStatus: Record<number, Code> = {
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.NotFound,
};

/**
 * Every socket listener is added before the socket opens: the runner sends `attached`, the replay
 * and maybe `exit` right behind the upgrade response, and ws emits them as soon as it has them.
 */
export function websocketChannel(r: RunnerSession): OpenTerminalChannel {
  return (t, events) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(
        r.terminalUrl(t.terminalId, { replay: t.replay, ...t.size }),
        terminalSocketProtocols(r.token),
        { perMessageDeflate: false },
      );
      let opened = false;
      let refused: Error | undefined;
      ws.once("unexpected-response", (_req, res) => {
        const status = res.statusCode ?? 0;
        refused = refusal(codeOfStatus[status], t, `HTTP ${status}`);
        res.resume();
        ws.terminate();
      });
      ws.on("error", (err) => {
        if (!opened) refused ??= describeError(err);
      });
      ws.on("message", (data: RawData, isBinary: boolean) => {
        const bytes = toBuffer(data);
        events.frame(isBinary ? { case: "output", value: bytes } : parseFrame(bytes));
      });
      ws.once("open", () => {
        opened = true;
        resolve({
          send(f) {
            if (ws.readyState !== WebSocket.OPEN) return;
            if (f.case === "input") ws.send(f.value, { binary: true });
            else ws.send(toJsonString(AttachRequestSchema, create(AttachRequestSchema, { frame: f })));
          },
          close: () => ws.close(1000, "detached"),
        });
      });
      ws.once("close", (code, reason) => {
        if (!opened) reject(refused ?? new CliError("could not connect to the terminal"));
        else events.closed(`${code}: ${redact(reason.toString("utf8")) || "no reason given"}`);
      });
    });
}

/** A text frame; one this client does not know is ignored. */
function parseFrame(bytes: Buffer): RunnerFrame {
  try {
    return fromJsonString(AttachResponseSchema, bytes.toString("utf8"), { ignoreUnknownFields: true }).frame;
  } catch {
    return { case: undefined };
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
