/**
 * A terminal channel over TerminalService's bidi Attach, with gRPC over HTTP/2 through core's
 * /<replId>/ proxy. Closing cancels the call: the runner then detaches (the terminal keeps running).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type { AttachRequestSchema, AttachResponse } from "../../gen/devex/runner/v1/terminal_pb.js";
import type { RunnerClients } from "../../lib/client/clients.js";
import { AsyncQueue } from "../../lib/kit/async-queue.js";
import { describeError, redact } from "./errors.js";
import { type OpenTerminalChannel, refusal } from "./terminal-channel.js";
import { begun, connectionFailure } from "./transport.js";

export function grpcChannel(terminals: RunnerClients["terminals"]): OpenTerminalChannel {
  return async (t, events) => {
    // drain() is an async generator: it has the return() and throw() connect-node calls when the call ends.
    const requests = new AsyncQueue<MessageInitShape<typeof AttachRequestSchema>>();
    requests.push({ frame: { case: "start", value: { terminalId: t.terminalId, replay: t.replay, size: t.size } } });
    const call = new AbortController();
    let responses: AsyncIterable<AttachResponse>;
    try {
      responses = await begun(terminals.attach(requests.drain(), { signal: call.signal }));
    } catch (e) {
      call.abort();
      // A failed connection goes up as it is (transport.ts may fall back); an answer is a refusal.
      if (e instanceof ConnectError && connectionFailure(e) === undefined)
        throw refusal(e.code, t, redact(e.rawMessage));
      throw e;
    }
    let detached = false;
    void (async () => {
      let why = "the runner ended the attachment";
      try {
        for await (const { frame } of responses) events.frame(frame);
      } catch (e) {
        why = detached ? "detached" : describeError(e).message;
      }
      requests.end();
      events.closed(why);
    })();
    return {
      send(f) {
        if (!detached) requests.push({ frame: f });
      },
      close() {
        detached = true;
        call.abort();
      },
    };
  };
}
