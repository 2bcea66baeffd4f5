/**
 * TerminalService over the session registry. Attach and StreamOutput carry terminals/attach.ts's
 * frames, as the WebSocket bridge (terminals/ws-bridge.ts) does, so every transport has the same
 * frames and flow control; this file only wraps them in messages and reads Attach's client frames.
 * Where the call has a response lane (binary gRPC over HTTP/2: lib/kit/response-lane.ts), output
 * frames are written to it as they come instead of yielded.
 */
import { create, type DescMessage } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type AttachRequest,
  AttachResponseSchema,
  CloseTerminalResponseSchema,
  CreateTerminalResponseSchema,
  ListTerminalsResponseSchema,
  ReadScrollbackResponseSchema,
  ResizeTerminalResponseSchema,
  SendInputResponseSchema,
  StreamOutputResponseSchema,
  type TerminalService,
} from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import { responseLane } from "../../../../lib/kit/response-lane.js";
import type { ActivityTracker } from "../activity.js";
import { type OutputWriter, TerminalAttach } from "../terminals/attach.js";
import type { TerminalRegistry } from "../terminals/registry.js";
import { terminalProto } from "../terminals/terminal-proto.js";

export interface TerminalServiceDeps {
  terminals: TerminalRegistry;
  activity: ActivityTracker;
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
      const client = new TerminalAttach(terminals.get(start.terminalId), activity);
      const done = new AbortController();
      const stop = () => done.abort();
      ctx.signal.addEventListener("abort", stop, { once: true });
      let failure: unknown;
      // A `then` per frame rather than an async loop's resumption: a frame is a keystroke.
      const fail = (e: unknown) => {
        // An invalid frame ends the call with its error; a vanished client ends it through ctx.signal.
        failure = e;
        done.abort();
      };
      const apply = (r: IteratorResult<AttachRequest>) => {
        if (r.done) return;
        try {
          client.apply(r.value);
          iterator.next().then(apply, fail);
        } catch (e) {
          fail(e);
        }
      };
      iterator.next().then(apply, fail);
      try {
        const writer = laneWriter(ctx, AttachResponseSchema);
        for await (const frame of client.frames({
          replay: start.replay,
          size: start.size,
          signal: done.signal,
          writer,
        })) {
          yield create(AttachResponseSchema, { frame });
        }
        if (failure && !ctx.signal.aborted) throw failure;
      } finally {
        ctx.signal.removeEventListener("abort", stop);
      }
    },

    async *streamOutput(req, ctx) {
      const client = new TerminalAttach(terminals.get(req.terminalId), activity);
      const writer = laneWriter(ctx, StreamOutputResponseSchema);
      for await (const frame of client.frames({ replay: req.replay, signal: ctx.signal, writer })) {
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

/** Output frames as `schema`'s messages onto the call's response lane, if it has one. */
function laneWriter(
  ctx: HandlerContext,
  schema: typeof AttachResponseSchema | typeof StreamOutputResponseSchema,
): OutputWriter | undefined {
  const lane = ctx.values.get(responseLane);
  if (!lane) return undefined;
  return {
    write: (data, sent) => lane.write(create(schema as DescMessage, { frame: { case: "output", value: data } }), sent),
    backlog: lane.backlog,
  };
}
