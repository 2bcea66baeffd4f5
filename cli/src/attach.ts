/**
 * `devex attach`: the local terminal joined to a repl terminal through the runner's WebSocket bridge
 * (services/runner/src/terminals/ws-bridge.ts), which core's /<replId>/ proxy carries (it has no h2c,
 * so gRPC bidi Attach is not an option). Binary frames are bytes each way; text frames are
 * protobuf-JSON: `attached` first, `exit` last from the runner, `resize` and `ack` from us.
 *
 * Output is acked once it is written to stdout, so a slow local terminal pauses the remote PTY
 * instead of growing buffers. The token travels as a subprotocol, never in the URL. A new terminal
 * starts at the local terminal's size, and a reattach resizes it before the replay is taken. On a
 * reattach, the local terminal's answers to the replay never reach the shell (replay-gate.ts).
 */
import { spawnSync } from "node:child_process";
import { constants } from "node:os";
import { type RawData, WebSocket } from "ws";
import type { RunnerSession } from "../../lib/client/runner-session.js";
import { terminalSocketProtocols } from "../../lib/contracts/terminal-socket.js";
import { CliError, describeError, redact } from "./errors.js";
import { exitCodeOf } from "./exec.js";
import { ReplayGate } from "./replay-gate.js";

/** Ctrl-] detaches, as in telnet and docker attach. */
export const DETACH_BYTE = 0x1d;

export interface AttachOptions {
  /** Reattach to this terminal (replaying its scrollback) instead of creating one. */
  terminalId?: string;
  /** Shell command line the new terminal runs instead of the default login shell. */
  command?: string;
}

export interface AttachIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WritableStream;
}

export async function attachTerminal(r: RunnerSession, o: AttachOptions, io: AttachIo): Promise<number> {
  const size = io.stdout.isTTY ? { cols: io.stdout.columns, rows: io.stdout.rows } : undefined;
  const terminalId = o.terminalId ?? (await createTerminal(r, o.command, size));
  return relay(r, terminalId, Boolean(o.terminalId), size, io);
}

async function createTerminal(
  r: RunnerSession,
  command: string | undefined,
  size: { cols: number; rows: number } | undefined,
): Promise<string> {
  try {
    const { terminal } = await r.clients.terminals.createTerminal({
      command: command ? ["sh", "-c", command] : [],
      size,
      name: "devex-cli",
    });
    if (!terminal) throw new CliError("the runner created no terminal");
    return terminal.terminalId;
  } catch (e) {
    throw describeError(e);
  }
}

/**
 * Opens the socket and joins it to stdin/stdout. Every socket listener is added before the socket
 * opens: the runner sends `attached`, the replay and maybe `exit` right behind the upgrade response,
 * and ws emits them as soon as it has them.
 */
function relay(
  r: RunnerSession,
  terminalId: string,
  replay: boolean,
  size: { cols: number; rows: number } | undefined,
  io: AttachIo,
): Promise<number> {
  const ws = new WebSocket(r.terminalUrl(terminalId, { replay, ...size }), terminalSocketProtocols(r.token), {
    perMessageDeflate: false,
  });
  const replId = r.replId;
  const { stdin, stdout, stderr } = io;
  const raw = Boolean(stdin.isTTY);
  let exitCode: number | undefined;
  let detached = false;
  let replayLeft = 0;
  const gate = new ReplayGate((query) => stdout.write(query), replay && raw && Boolean(stdout.isTTY));

  const restoreTty = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  const sendJson = (msg: object) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  };
  const onResize = () => sendJson({ resize: { cols: stdout.columns, rows: stdout.rows } });
  const onInput = (input: Buffer) => {
    const chunk = gate.pass(input);
    if (ws.readyState !== WebSocket.OPEN || chunk.length === 0) return;
    const at = raw ? chunk.indexOf(DETACH_BYTE) : -1;
    if (at < 0) {
      ws.send(chunk, { binary: true });
      return;
    }
    if (at > 0) ws.send(chunk.subarray(0, at), { binary: true });
    detached = true;
    ws.close(1000, "detached");
  };
  // A pipe that ends is end of input: Ctrl-D lets the shell see EOF.
  const onInputEnd = () => {
    if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.from([0x04]), { binary: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    restoreTty();
    process.exit(128 + (constants.signals[signal] ?? 0));
  };

  return new Promise((resolve, reject) => {
    let opened = false;
    let refusal: CliError | undefined;
    ws.once("unexpected-response", (_req, res) => {
      refusal = refusedMessage(res.statusCode ?? 0, replId, terminalId);
      res.resume();
      ws.terminate();
    });
    ws.on("error", (err) => {
      refusal ??= opened ? undefined : describeError(err);
    });
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = toBuffer(data);
      if (isBinary) {
        stdout.write(bytes, () => sendJson({ ack: String(bytes.length) }));
        if (replayLeft > 0) {
          replayLeft = Math.max(0, replayLeft - bytes.length);
          if (replayLeft === 0) gate.replayed();
        }
        return;
      }
      const frame = parseFrame(bytes);
      if (frame.attached) {
        replayLeft = Number(frame.attached.replayBytes ?? 0);
        if (replayLeft === 0) gate.replayed();
      }
      if (frame.exit) exitCode = exitCodeOf({ exitCode: frame.exit.exitCode ?? 0, signal: frame.exit.signal ?? "" });
    });
    ws.once("open", () => {
      opened = true;
      process.on("exit", restoreTty);
      process.on("SIGTERM", onSignal);
      process.on("SIGHUP", onSignal);
      if (raw) enterRawMode(stdin);
      if (stdout.isTTY) stdout.on("resize", onResize);
      stdin.on("data", onInput);
      stdin.on("end", onInputEnd);
      stdin.resume();
    });
    ws.once("close", (code, reason) => {
      cleanup();
      if (!opened) {
        reject(refusal ?? new CliError("could not connect to the terminal"));
      } else if (detached) {
        stderr.write(
          `\r\ndetached from terminal ${terminalId}; reattach with: devex attach ${replId} --terminal ${terminalId}\r\n`,
        );
        resolve(0);
      } else if (exitCode !== undefined) {
        resolve(exitCode);
      } else {
        const why = redact(reason.toString("utf8")) || "no reason given";
        reject(
          new CliError(
            `the terminal connection closed (${code}: ${why}); reattach with: devex attach ${replId} --terminal ${terminalId}`,
          ),
        );
      }
    });

    const cleanup = () => {
      gate.dispose();
      restoreTty();
      stdin.off("data", onInput);
      stdin.off("end", onInputEnd);
      stdout.off("resize", onResize);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", onSignal);
      process.off("exit", restoreTty);
      stdin.pause();
    };
  });
}

/** A runner text frame (protobuf-JSON AttachResponse): `attached` (for the replay's length) or `exit`. */
function parseFrame(bytes: Buffer): {
  attached?: { replayBytes?: string };
  exit?: { exitCode?: number; signal?: string };
} {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return {};
  }
}

function refusedMessage(status: number, replId: string, terminalId: string): CliError {
  if (status === 404) return new CliError(`no terminal ${terminalId} in repl ${replId}`);
  if (status === 401) return new CliError("the runner refused the token: run devex login and try again");
  if (status === 403) return new CliError(`permission denied for terminal ${terminalId}`);
  return new CliError(`the runner refused the terminal connection (HTTP ${status})`);
}

/**
 * Raw mode as ssh sets it. libuv's raw mode keeps output post-processing (ONLCR), which would turn
 * the remote's bare "\n" (cursor down, as full-screen programs use it) into CR LF; `stty -opost`
 * turns that off too. setRawMode(false) restores the termios saved before, OPOST included.
 */
function enterRawMode(stdin: NodeJS.ReadStream) {
  stdin.setRawMode(true);
  spawnSync("stty", ["-opost"], { stdio: [stdin, "ignore", "ignore"] });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
