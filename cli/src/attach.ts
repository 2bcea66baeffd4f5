/**
 * `devex attach`: the local terminal joined to a repl terminal through a terminal channel: gRPC's
 * bidi Attach, or the runner's WebSocket bridge where HTTP/2 is not available (transport.ts). Both
 * carry the same frames: `attached` first and `exit` last from the runner; input, `resize` and `ack`
 * from us.
 *
 * Output is acked once it is written to stdout, so a slow local terminal pauses the remote PTY
 * instead of growing buffers. A new terminal starts at the local terminal's size, and a reattach
 * resizes it before the replay is taken. On a reattach, the local terminal's answers to the replay
 * never reach the shell (replay-gate.ts).
 */
import { spawnSync } from "node:child_process";
import { constants } from "node:os";
import { CliError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { exitCodeOf } from "./exec.js";
import { grpcChannel } from "./grpc-channel.js";
import { ReplayGate } from "./replay-gate.js";
import type { ChannelTarget, OpenTerminalChannel, RunnerFrame, TerminalChannel } from "./terminal-channel.js";
import type { RunnerLink } from "./transport.js";
import { websocketChannel } from "./websocket-channel.js";

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

export async function attachTerminal(runner: RunnerLink, o: AttachOptions, io: AttachIo): Promise<number> {
  const r = runner.session;
  const size = io.stdout.isTTY ? { cols: io.stdout.columns, rows: io.stdout.rows } : undefined;
  const terminalId = o.terminalId ?? (await createTerminal(runner, o.command, size));
  const target = { replId: r.replId, terminalId, replay: Boolean(o.terminalId), size };
  const open: OpenTerminalChannel = (t, events) =>
    runner.call((clients, protocol) =>
      protocol === "grpc" ? grpcChannel(clients.terminals)(t, events) : websocketChannel(r)(t, events),
    );
  return relay(open, target, io);
}

async function createTerminal(
  runner: RunnerLink,
  command: string | undefined,
  size: { cols: number; rows: number } | undefined,
): Promise<string> {
  try {
    const { terminal } = await runner.call((clients) =>
      clients.terminals.createTerminal({ command: command ? ["sh", "-c", command] : [], size, name: "devex-cli" }),
    );
    if (!terminal) throw new CliError("the runner created no terminal");
    return terminal.terminalId;
  } catch (e) {
    throw describeError(e);
  }
}

/** Joins the channel to stdin/stdout until the terminal exits, the user detaches, or the connection ends. */
async function relay(open: OpenTerminalChannel, t: ChannelTarget, io: AttachIo): Promise<number> {
  const { stdin, stdout, stderr } = io;
  const raw = Boolean(stdin.isTTY);
  let exitCode: number | undefined;
  let detached = false;
  let replayLeft = 0;
  const gate = new ReplayGate((query) => stdout.write(query), t.replay && raw && Boolean(stdout.isTTY));
  let closed!: (why: string) => void;
  const ended = new Promise<string>((resolve) => {
    closed = resolve;
  });

  // Output can come before open() returns the channel: its acks wait for it.
  let channel: TerminalChannel | undefined;
  let owed = 0;
  const ack = (bytes: number) => {
    owed += bytes;
    if (!channel || owed === 0) return;
    channel.send({ case: "ack", value: BigInt(owed) });
    owed = 0;
  };
  const onFrame = (f: RunnerFrame) => {
    if (f.case === "output") {
      const bytes = f.value;
      stdout.write(bytes, () => ack(bytes.length));
      if (replayLeft > 0) {
        replayLeft = Math.max(0, replayLeft - bytes.length);
        if (replayLeft === 0) gate.replayed();
      }
    } else if (f.case === "attached") {
      replayLeft = Number(f.value.replayBytes);
      if (replayLeft === 0) gate.replayed();
    } else if (f.case === "exit") {
      exitCode = exitCodeOf(f.value);
    }
  };
  let opened: TerminalChannel;
  try {
    opened = await open(t, { frame: onFrame, closed });
  } catch (e) {
    gate.dispose();
    throw describeError(e);
  }
  channel = opened;
  ack(0);

  const restoreTty = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  const onResize = () => opened.send({ case: "resize", value: { cols: stdout.columns, rows: stdout.rows } });
  const onInput = (input: Buffer) => {
    const chunk = gate.pass(input);
    if (chunk.length === 0 || detached) return;
    const at = raw ? chunk.indexOf(DETACH_BYTE) : -1;
    if (at !== 0) opened.send({ case: "input", value: at < 0 ? chunk : chunk.subarray(0, at) });
    if (at < 0) return;
    detached = true;
    opened.close();
  };
  // A pipe that ends is end of input: Ctrl-D lets the shell see EOF.
  const onInputEnd = () => opened.send({ case: "input", value: Buffer.from([0x04]) });
  const onSignal = (signal: NodeJS.Signals) => {
    restoreTty();
    process.exit(128 + (constants.signals[signal] ?? 0));
  };

  process.on("exit", restoreTty);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  if (raw) enterRawMode(stdin);
  if (stdout.isTTY) stdout.on("resize", onResize);
  stdin.on("data", onInput);
  stdin.on("end", onInputEnd);
  stdin.resume();
  let why: string;
  try {
    why = await ended;
  } finally {
    gate.dispose();
    restoreTty();
    stdin.off("data", onInput);
    stdin.off("end", onInputEnd);
    stdout.off("resize", onResize);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    process.off("exit", restoreTty);
    stdin.pause();
  }
  const reattach = `devex attach ${t.replId} --terminal ${t.terminalId}`;
  if (detached) {
    stderr.write(`\r\ndetached from terminal ${t.terminalId}; reattach with: ${reattach}\r\n`);
    return 0;
  }
  if (exitCode !== undefined) return exitCode;
  throw new CliError(`the terminal connection closed (${why}); reattach with: ${reattach}`);
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
