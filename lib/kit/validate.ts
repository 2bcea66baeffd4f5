/**
 * protovalidate for every request message, unary and streamed: a message that breaks the rules in
 * proto/ is refused with InvalidArgument naming each field and rule, before the handler sees it. So
 * is one with invalid UTF-8 in a string field (see utf8.ts).
 */
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
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
    async function* validated(it: AsyncIterable<Message>) {
      for await (const m of it) {
        check(input, m);
        yield m;
      }
    }
    return next({ ...req, message: validated(req.message) });
  };
}
