/**
 * protovalidate for every request message, unary and streamed: a message that breaks the rules in
 * proto/ is refused with InvalidArgument naming each field and rule, before the handler sees it. So
 * is one with invalid UTF-8 in a string field (see utf8.ts).
 */
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { provedValid } from "./proved-valid.js";
import { installLenientUtf8, malformedStringField } from "./utf8.js";

let shared: ReturnType<typeof createValidator> | undefined;

/**
 * One validator per process: it compiles each message's rules (CEL) on first use and caches them, so
 * servers in the same process (a pooled runner warmed up before it is handed a repl) and the
 * runner's WebSocket bridge share the work. Made on first use, not at start.
 */
export function sharedValidator(): ReturnType<typeof createValidator> {
  shared ??= createValidator();
  return shared;
}

export function validateInterceptor(): Interceptor {
  installLenientUtf8();
  const check = (schema: DescMessage, message: Message) => {
    const malformed = malformedStringField(schema, message);
    if (malformed) {
      throw new ConnectError(
        `request is not valid protobuf: invalid UTF-8 in the string field "${malformed}" of ${schema.name}: send UTF-8 text (binary data belongs in bytes fields)`,
        Code.InvalidArgument,
      );
    }
    if (provedValid(schema, message)) return;
    const result = sharedValidator().validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "invalid") {
      const details = result.violations.map((v) => v.toString()).join("; ");
      throw new ConnectError(`invalid ${schema.name}: ${details}`, Code.InvalidArgument);
    }
    throw new ConnectError(`cannot validate ${schema.name}`, Code.Internal, undefined, undefined, result.error);
  };
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const input = req.method.input;
    return next({ ...req, message: checkedEach(req.message, (m) => check(input, m)) });
  };
}

/**
 * `messages`, each checked as it is read. An iterator, not an async generator: this runs for every
 * message of a stream (a keystroke on a terminal's Attach), and a generator's promises per message
 * were a share of what the runner allocated per keystroke. A message that fails its check ends the
 * stream with the error and closes `messages`, as a generator's loop would.
 */
function checkedEach(messages: AsyncIterable<Message>, check: (m: Message) => void): AsyncIterable<Message> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      let failed = false;
      const pass = (r: IteratorResult<Message>): IteratorResult<Message> => {
        if (r.done) return r;
        try {
          check(r.value);
        } catch (e) {
          failed = true;
          void it.return?.().catch(() => {});
          throw e;
        }
        return r;
      };
      const done = { done: true as const, value: undefined };
      return {
        next: () => (failed ? Promise.resolve(done) : it.next().then(pass)),
        return: () => it.return?.() ?? Promise.resolve(done),
        throw: (e: unknown) => it.throw?.(e) ?? Promise.reject(e),
      };
    },
  };
}
