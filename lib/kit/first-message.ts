/**
 * A stream request's first message, as its handler reads it: a server-streaming call's request is
 * its only message, which an interceptor cannot read before the handler does (it is an iterable).
 * `tapFirst` passes the messages on and keeps the first, for whoever records the call.
 */
export function tapFirst<T>(messages: AsyncIterable<T>): { messages: AsyncIterable<T>; first: () => T | undefined } {
  let first: T | undefined;
  let seen = false;
  async function* tapped() {
    for await (const m of messages) {
      if (!seen) first = m;
      seen = true;
      yield m;
    }
  }
  return { messages: tapped(), first: () => first };
}
