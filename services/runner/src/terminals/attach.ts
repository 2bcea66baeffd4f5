/**
 * One client attached to a terminal, whatever carries it. TerminalService's Attach and StreamOutput
 * (protobuf messages over Connect) and the WebSocket bridge (binary and protobuf-JSON frames) read
 * `frames()` and hand the client's frames to `apply()`; each keeps only its framing and its input
 * parsing, so every transport has the same frames, batching and flow control.
 *
 * Frames: `attached` first, then the replay (when asked for), live output, and `exit` last. A
 * transport that can send a frame at once (a gRPC response lane over HTTP/2, lib/kit/response-lane.ts;
 * the WebSocket bridge) passes a `writer`: `frames()` yields `attached` and `exit`, and every output
 * frame goes to the writer, the replay (queued before `attached`) once `attached` went out, live
 * output as the session flushes it, through no generator. The others (the Connect protocol and
 * gRPC-web, as browsers use) take output from the generator, one frame in flight: the next is
 * taken once the transport took the previous one (the generator resumed), and output that queued
 * meanwhile is merged into it up to MAX_FRAME_BYTES, so
 * a busy transport gets fewer, larger frames and an idle one each keystroke's echo at once. Flow
 * control is the session's (session.ts): the attachment counts acks, and the output queued here plus
 * what the writer holds unsent pause the PTY at the watermarks.
 */
import { create } from "@bufbuild/protobuf";
import {
  AttachedSchema,
  type AttachRequest,
  type AttachResponse,
  TerminalExitSchema,
} from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { AsyncQueue } from "../../../../lib/kit/async-queue.js";
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { ActivityTracker } from "../activity.js";
import type { Attachment, AttachmentSink, TerminalSession } from "./session.js";
import { terminalProto } from "./terminal-proto.js";

export type AttachFrame = AttachResponse["frame"];

/** Largest output frame after merging. */
export const MAX_FRAME_BYTES = 256 * 1024;

const outputMerging = {
  mergeable: (f: AttachFrame) => f.case === "output",
  merge: (frames: AttachFrame[]): AttachFrame => ({
    case: "output",
    value: Buffer.concat(frames.map((f) => f.value as Uint8Array)),
  }),
  maxSize: MAX_FRAME_BYTES,
};

export interface AttachOptions {
  /** Send the session's replay (its mirror's screen and scrollback) first. */
  replay: boolean;
  /** Resize the terminal before the replay is taken, so it comes at the client's size. */
  size?: { cols: number; rows: number };
  /** The client left: detach and end the frames. */
  signal: AbortSignal;
  /** Sends output frames at once, instead of yielding them (see the header). */
  writer?: OutputWriter;
}

export interface OutputWriter {
  /** Sends one output frame now, after everything sent before; `sent` runs once the transport took it. */
  write(data: Uint8Array, sent: () => void): void;
  /** Output written but not sent yet. */
  backlog(): number;
}

export class TerminalAttach {
  private attachment: Attachment | undefined;

  constructor(
    readonly session: TerminalSession,
    private readonly activity: ActivityTracker,
  ) {}

  /** The frames for the client, until the terminal exits or `signal` aborts. */
  async *frames(o: AttachOptions): AsyncGenerator<AttachFrame> {
    if (o.size) this.session.resize(o.size.cols, o.size.rows);
    const queue = new AsyncQueue<AttachFrame>(undefined, outputMerging);
    const writer = o.writer;
    /** Output goes to `writer` as it comes once `attached` went out and no output waits in the queue. */
    let direct = false;
    /** Output bytes queued, or taken from the queue and not yet sent or yielded. */
    let waiting = 0;
    let failure: unknown;
    const send = (data: Uint8Array) => {
      try {
        writer!.write(data, () => this.attachment?.drained());
      } catch (e) {
        failure ??= e;
        queue.end();
      }
    };
    const sink: AttachmentSink = {
      output: (data) => {
        if (direct && waiting === 0) return send(data);
        waiting += data.length;
        queue.push({ case: "output", value: data }, data.length);
      },
      exit: (e) => {
        queue.push({ case: "exit", value: create(TerminalExitSchema, e) });
        queue.end();
      },
      transportBacklog: () => queue.bytes + (writer?.backlog() ?? 0),
    };
    // Replay frames (and `exit` of an exited terminal) are queued by attach() and follow `attached`.
    const attachment = await this.session.attach(sink, o.replay);
    this.attachment = attachment;
    // Detach when the client leaves even if the transport never takes another frame.
    const leave = () => attachment.detach();
    o.signal.addEventListener("abort", leave, { once: true });
    try {
      if (o.signal.aborted) return; // the client left while the replay was taken
      const terminal = terminalProto(this.session);
      yield {
        case: "attached",
        value: create(AttachedSchema, { terminal, replayBytes: BigInt(attachment.replayBytes) }),
      };
      direct = writer !== undefined;
      for await (const frame of queue.drain(o.signal)) {
        if (direct && frame.case === "output") send(frame.value);
        else yield frame;
        if (frame.case === "output") waiting -= frame.value.length;
        attachment.drained();
      }
      if (failure) throw failure;
    } finally {
      o.signal.removeEventListener("abort", leave);
      attachment.detach();
    }
  }

  /** Applies one client frame after `start`: input, resize or ack. */
  apply(req: AttachRequest): void {
    const f = req.frame;
    switch (f.case) {
      case "input":
        this.input(f.value);
        break;
      case "resize":
        this.session.resize(f.value.cols, f.value.rows);
        break;
      case "ack":
        this.attachment?.ack(Number(f.value));
        break;
      case "start":
        throw invalidArgument("`start` may only be the first frame");
    }
  }

  /** Keystrokes (or pasted text) for the terminal. */
  input(data: Uint8Array): void {
    this.activity.touch();
    this.session.write(data);
  }
}
