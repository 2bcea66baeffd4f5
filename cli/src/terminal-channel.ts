/**
 * A connection to one runner terminal, whatever carries it: gRPC's bidi Attach (grpc-channel.ts) or
 * the runner's WebSocket bridge (websocket-channel.ts). Both carry TerminalService's Attach frames,
 * so attach.ts has one relay for both.
 */
import { Code } from "@connectrpc/connect";
import type { AttachResponse, TerminalSize } from "../../gen/devex/runner/v1/terminal_pb.js";
import { CliError } from "./cli-error.js";

/** From the runner: `attached` first, then output, and `exit` last. */
export type RunnerFrame = AttachResponse["frame"];

/** To the runner, after the start: input bytes, a new size, or output bytes written (the ack). */
export type ClientFrame =
  | { case: "input"; value: Uint8Array }
  | { case: "resize"; value: Pick<TerminalSize, "cols" | "rows"> }
  | { case: "ack"; value: bigint };

export interface ChannelTarget {
  replId: string;
  terminalId: string;
  /** Replay the terminal's screen and scrollback first (a reattach). */
  replay: boolean;
  /** Resize the terminal to this before the replay is taken. */
  size?: { cols: number; rows: number };
}

export interface ChannelEvents {
  frame(f: RunnerFrame): void;
  /** The connection ended, once, after the channel opened; `why` says how when no `exit` came. */
  closed(why: string): void;
}

export interface TerminalChannel {
  /** Dropped once the channel closed. */
  send(f: ClientFrame): void;
  /** Leaves the terminal running (detach); `closed` follows. */
  close(): void;
}

/**
 * Opens a channel; resolves once the runner accepted it. Events may come before it resolves. A
 * refusal rejects with a CliError; a failed connection rejects with its own error (transport.ts
 * tells those apart).
 */
export type OpenTerminalChannel = (target: ChannelTarget, events: ChannelEvents) => Promise<TerminalChannel>;

/** The runner refused the attachment: what to tell the user. */
export function refusal(code: Code | undefined, t: ChannelTarget, detail: string): CliError {
  if (code === Code.NotFound) return new CliError(`no terminal ${t.terminalId} in repl ${t.replId}`);
  if (code === Code.Unauthenticated) return new CliError("the runner refused the token: run devex login and try again");
  if (code === Code.PermissionDenied) return new CliError(`permission denied for terminal ${t.terminalId}`);
  return new CliError(`the runner refused the terminal connection (${detail})`);
}
