/**
 * TerminalService over the session registry. Attach and StreamOutput share `attachStream`, which
 * the WebSocket bridge uses too, so every transport carries the same frames and flow control.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AttachedSchema,
  type AttachRequest,
  type AttachResponse,
  AttachResponseSchema,
  CloseTerminalResponseSchema,
  CreateTerminalResponseSchema,
  ListTerminalsResponseSchema,
  ReadScrollbackResponseSchema,
  ResizeTerminalResponseSchema,
  SendInputResponseSchema,
  StreamOutputResponseSchema,
  type Terminal,
  TerminalExitSchema,
  TerminalSchema,
  type TerminalService,
  TerminalSizeSchema,
} from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import type { ActivityTracker } from "../activity.js";
import { AsyncQueue } from "../async-queue.js";
import type { TerminalRegistry } from "../terminals/registry.js";
import type { Attachment, TerminalExitInfo, TerminalSession } from "../terminals/session.js";

export interface TerminalServiceDeps {
  terminals: TerminalRegistry;
  activity: ActivityTracker;
}

export function terminalProto(s: TerminalSession): Terminal {
  return create(TerminalSchema, {
    terminalId: s.id,
    name: s.name,
    command: s.command,
    cwd: s.cwd,
    size: create(TerminalSizeSchema, { cols: s.cols, rows: s.rows }),
    pid: s.pid,
    createTime: timestampFromMs(s.createTime),
    exited: s.exit !== undefined,
    exit: s.exit ? create(TerminalExitSchema, s.exit) : undefined,
    attachedClients: s.attachedClients,
  });
}

export type Frame = AttachResponse["frame"];

/** Largest output message after coalescing. */
export const MAX_FRAME_BYTES = 256 * 1024;

const outputCoalescing = {
  mergeable: (f: Frame) => f.case === "output",
  merge: (frames: Frame[]): Frame => ({
    case: "output",
    value: Buffer.concat(frames.map((f) => f.value as Uint8Array)),
  }),
  maxSize: MAX_FRAME_BYTES,
};

/**
 * Attaches to a session and yields `attached`, replay, live output and `exit` frames until the
 * terminal exits or `signal` aborts. `onAttach` receives the attachment (for acks).
 */
export async function* attachStream(
  session: TerminalSession,
  replay: boolean,
  signal: AbortSignal,
  onAttach?: (a: Attachment) => void,
): AsyncGenerator<Frame> {
  let attachment: Attachment | undefined;
  const queue = new AsyncQueue<Frame>(() => attachment?.drained(), outputCoalescing);
  const sink = {
    output: (data: Buffer) => queue.push({ case: "output", value: data }, data.length),
    exit: (e: TerminalExitInfo) => {
      queue.push({ case: "exit", value: create(TerminalExitSchema, e) });
      queue.end();
    },
    transportBacklog: () => queue.bytes,
  };
  // Replay frames (and `exit` of an exited terminal) are queued by attach() and follow `attached`.
  attachment = await session.attach(sink, replay);
  onAttach?.(attachment);
  try {
    yield {
      case: "attached",
      value: create(AttachedSchema, { terminal: terminalProto(session), replayBytes: BigInt(attachment.replayBytes) }),
    };
    yield* queue.drain(signal);
  } finally {
    attachment.detach();
  }
}

export function createTerminalService({
  terminals,
  activity,
}: TerminalServiceDeps): ServiceImpl<typeof TerminalService> {
  return {
    async createTerminal(req) {
      const s = await terminals.create({
        command: req.command,
        cwd: req.cwd,
        env: req.env,
        cols: req.size?.cols,
        rows: req.size?.rows,
        name: req.name,
      });
      return create(CreateTerminalResponseSchema, { terminal: terminalProto(s) });
    },

    async listTerminals() {
      return create(ListTerminalsResponseSchema, { terminals: terminals.list().map(terminalProto) });
    },

    async closeTerminal(req) {
      await terminals.close(req.terminalId);
      return create(CloseTerminalResponseSchema, {});
    },

    async *attach(requests, ctx) {
      const iterator = requests[Symbol.asyncIterator]();
      const head = await iterator.next();
      if (head.done) return;
      if (head.value.frame.case !== "start") {
        throw invalidArgument("the first Attach frame must be `start` naming the terminal");
      }
      const start = head.value.frame.value;
      const session = terminals.get(start.terminalId);
      if (start.size) session.resize(start.size.cols, start.size.rows);
      const done = new AbortController();
      const stop = () => done.abort();
      ctx.signal.addEventListener("abort", stop, { once: true });
      let attachment: Attachment | undefined;
      let failure: unknown;
      void (async () => {
        try {
          for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
            handleClientFrame(session, r.value, attachment, activity);
          }
        } catch (e) {
          // An invalid frame ends the call with its error; a vanished client ends it through ctx.signal.
          failure = e;
          done.abort();
        }
      })();
      try {
        for await (const frame of attachStream(session, start.replay, done.signal, (a) => (attachment = a))) {
          yield create(AttachResponseSchema, { frame });
        }
        if (failure && !ctx.signal.aborted) throw failure;
      } finally {
        ctx.signal.removeEventListener("abort", stop);
      }
    },

    async *streamOutput(req, ctx) {
      const session = terminals.get(req.terminalId);
      for await (const frame of attachStream(session, req.replay, ctx.signal)) {
        yield create(StreamOutputResponseSchema, { frame });
      }
    },

    async sendInput(req) {
      const s = terminals.get(req.terminalId);
      if (s.exit) throw failedPrecondition(`terminal "${s.id}" has exited: create a new one`);
      s.write(req.data);
      return create(SendInputResponseSchema, {});
    },

    async resizeTerminal(req) {
      terminals.get(req.terminalId).resize(req.size!.cols, req.size!.rows);
      return create(ResizeTerminalResponseSchema, {});
    },

    async readScrollback(req) {
      const s = terminals.get(req.terminalId);
      const data = s.readScrollback(req.maxBytes);
      return create(ReadScrollbackResponseSchema, {
        data,
        totalBytes: BigInt(s.totalBytes),
        terminal: terminalProto(s),
      });
    },
  };
}

/** Applies one client frame after `start`: input, resize or ack. */
export function handleClientFrame(
  session: TerminalSession,
  req: AttachRequest,
  attachment: Attachment | undefined,
  activity: ActivityTracker,
): void {
  const f = req.frame;
  switch (f.case) {
    case "input":
      activity.touch();
      session.write(f.value);
      break;
    case "resize":
      session.resize(f.value.cols, f.value.rows);
      break;
    case "ack":
      attachment?.ack(Number(f.value));
      break;
    case "start":
      throw invalidArgument("`start` may only be the first frame");
  }
}
