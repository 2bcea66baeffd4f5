/**
 * An interceptor that reports how each chosen call ended, once, for logs that outlive it (core's
 * and the runner's audit logs): a unary call when it is answered (with its response), a stream
 * once it sent its first message ("ok"), or failed before it, or ended without one ("ok"). The
 * report carries the request: a unary call's message, or a stream's first one as its handler read
 * it (a server stream's only one), since an interceptor cannot read a stream before the handler.
 */
import type { Interceptor } from "@connectrpc/connect";
import { tapFirst } from "./first-message.js";
import { failureOf, type Outcome, succeeded } from "./outcome.js";

type Call = Parameters<Parameters<Interceptor>[0]>[0];

/** Records one call's ending, with its request and (a unary call's) response. */
export type ReportEnding = (ending: Outcome, request: unknown, response?: unknown) => void;

/**
 * `choose` runs before the call: it returns how to report it, or undefined to leave it alone.
 * Failure messages are cut to `maxMessage` characters (outcome.ts).
 */
export function callOutcomeInterceptor(
  choose: (call: Call) => ReportEnding | undefined,
  maxMessage = 300,
): Interceptor {
  return (next) => async (req) => {
    const report = choose(req);
    if (!report) return next(req);
    let request: () => unknown;
    if (req.stream) {
      const tap = tapFirst(req.message);
      req = { ...req, message: tap.messages };
      request = tap.first;
    } else {
      const only = req.message;
      request = () => only;
    }
    try {
      const res = await next(req);
      if (!res.stream) {
        report(succeeded, request(), res.message);
        return res;
      }
      return { ...res, message: reported(res.message, (ending) => report(ending, request()), maxMessage) };
    } catch (err) {
      report(failureOf(err, maxMessage), request());
      throw err;
    }
  };
}

async function* reported<T>(it: AsyncIterable<T>, report: (ending: Outcome) => void, maxMessage: number) {
  let done = false;
  try {
    for await (const m of it) {
      if (!done) report(succeeded);
      done = true;
      yield m;
    }
  } catch (err) {
    if (!done) report(failureOf(err, maxMessage));
    done = true;
    throw err;
  } finally {
    if (!done) report(succeeded);
  }
}

/** A message's field `k` (undefined when `o` is no object): describing a call reads its messages loosely. */
export const fieldOf = (o: unknown, k: string): unknown =>
  o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined;

/** A message as a record of its fields ({} when it is none). */
export const fieldsOf = (o: unknown): Record<string, unknown> =>
  (o && typeof o === "object" ? o : {}) as Record<string, unknown>;
