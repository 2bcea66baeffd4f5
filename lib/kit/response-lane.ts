/**
 * A response lane: how a streaming handler writes messages straight onto its HTTP/2 stream, past
 * connect's per-message response chain. Each message a handler yields passes about fifteen
 * promise-based steps (its own generators, every interceptor's wrapper, connect's invoke, serialize
 * and catch stages, the adapter's awaited write); a terminal's output, a frame per keystroke's echo
 * or per burst of a flood, pays that for every frame. Through a lane it costs one encode (in parts,
 * bytes-parts.ts) and one corked write.
 *
 * Only the binary gRPC handler with parts (grpc-parts-handler.ts) opens lanes, for an uncompressed
 * response on an HTTP/2 stream (the kit's servers record each call's Node request, node-request.ts);
 * for every other protocol, encoding and transport `responseLane` holds undefined and the handler
 * yields its messages as usual.
 *
 * Order is the handler's to keep, and simple: its first message must be yielded (it sends the
 * headers), and it writes to the lane only while none of its yielded messages is on its way, that is
 * never while suspended at a `yield`. connect pulls one message at a time and writes it before it
 * asks for the next, so then everything yielded before is on the stream, and lane writes follow it
 * in the order they are made; so does the next yielded message, and the trailers after the last.
 * A write before the first message, or while connect holds a yielded one (from the moment it
 * reached the handler's caller until connect asks for the next), throws.
 */
import type { Message } from "@bufbuild/protobuf";
import { type ContextValues, createContextKey } from "@connectrpc/connect";
import { encodeEnvelope, type Serialization } from "@connectrpc/connect/protocol";
import type { PartsEncoder } from "./bytes-parts.js";
import { nodeRequest } from "./node-request.js";

export interface ResponseLane {
  /** Writes `message` now; `sent` runs once the stream took it, or at once when the stream is gone. */
  write(message: Message, sent?: () => void): void;
  /** Bytes written to the lane that the stream has not sent yet. */
  backlog(): number;
}

/** The call's lane, or undefined where there is none (the handler then yields). */
export const responseLane = createContextKey<ResponseLane | undefined>(undefined, { description: "response lane" });

/** A lane onto the call's HTTP/2 stream, if it came on one. */
export function openResponseLane(
  values: ContextValues | undefined,
  serialization: Serialization<Message>,
  encode: PartsEncoder,
  /** Whether connect is waiting for the handler's next message (and holds none of its messages). */
  pulling: () => boolean,
): ResponseLane | undefined {
  const request = nodeRequest(values);
  const stream = request && "stream" in request ? request.stream : undefined;
  if (!stream) return undefined;
  return {
    write(message, sent) {
      if (!stream.headersSent || !pulling()) {
        throw new Error(
          "a response lane takes writes after the first message, and not while a yielded one is on its way",
        );
      }
      if (stream.destroyed || stream.writableEnded) {
        sent?.();
        return;
      }
      const parts = encode(message as unknown as Record<string, unknown>) ?? [
        encodeEnvelope(0, serialization.serialize(message)),
      ];
      const last = parts.length - 1;
      // Corked only for several parts: a single write skips the stream's buffered list and writev.
      if (last > 0) stream.cork();
      for (let i = 0; i < last; i++) stream.write(parts[i]);
      stream.write(parts[last], sent && (() => sent()));
      if (last > 0) stream.uncork();
    },
    backlog: () => stream.writableLength,
  };
}
