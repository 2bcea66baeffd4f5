/**
 * How `attach` and `exec` reach the runner through core's /<replId>/ proxy: gRPC over HTTP/2 (h2c,
 * or h2 over TLS), or the HTTP/1.1 path (attach: the WebSocket bridge; exec: Connect). gRPC is the
 * default. When HTTP/2 cannot be had, say behind a proxy that speaks only HTTP/1.1, the gRPC call
 * fails before the runner sent anything, and the HTTP/1.1 path is taken instead. DEVEX_TRANSPORT
 * forces one (no fallback); DEVEX_DEBUG=1 prints the one taken to stderr.
 */
import { ConnectError } from "@connectrpc/connect";
import { CliError, redact, UsageError } from "./errors.js";

export type TransportName = "grpc" | "websocket";

export interface TransportChoice {
  /** DEVEX_TRANSPORT: use only this transport. */
  forced?: TransportName;
  /** Where the line naming the transport taken goes (DEVEX_DEBUG). */
  debug?: (line: string) => void;
}

export function transportChoice(env: NodeJS.ProcessEnv, stderr: NodeJS.WritableStream): TransportChoice {
  const forced = env.DEVEX_TRANSPORT || undefined;
  if (forced !== undefined && forced !== "grpc" && forced !== "websocket")
    throw new UsageError(`DEVEX_TRANSPORT must be grpc or websocket, not ${JSON.stringify(forced)}`);
  const debug = env.DEVEX_DEBUG ? (line: string) => stderr.write(`devex: ${line}\n`) : undefined;
  return { forced, debug };
}

/**
 * Runs `what` over gRPC, or over HTTP/1.1 when forced or when gRPC's connection failed. Both
 * attempts settle once the runner's first frame arrived, so a fallback never repeats a call the
 * runner already started.
 */
export async function overGrpcOrHttp1<T>(
  what: string,
  choice: TransportChoice,
  attempts: { grpc: () => Promise<T>; http1: () => Promise<T>; http1Name: string },
): Promise<T> {
  // Said once the transport carried the call's first frame.
  const over = async (attempt: () => Promise<T>, name: string) => {
    const result = await attempt();
    choice.debug?.(`${what}: ${name}`);
    return result;
  };
  if (choice.forced === "websocket") return over(attempts.http1, attempts.http1Name);
  try {
    return await over(attempts.grpc, "grpc");
  } catch (e) {
    const failure = connectionFailure(e);
    if (failure === undefined) throw e;
    if (choice.forced === "grpc")
      throw new CliError(
        `cannot reach the runner over gRPC (HTTP/2 failed: ${failure}); DEVEX_TRANSPORT=websocket uses HTTP/1.1`,
      );
    return over(attempts.http1, `${attempts.http1Name} (HTTP/2 failed: ${failure})`);
  }
}

/**
 * Why the connection failed, when the error is the connection's (a Node socket or HTTP/2 error)
 * rather than an answer from core or the runner.
 */
export function connectionFailure(e: unknown): string | undefined {
  const cause = e instanceof ConnectError ? e.cause : e;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string") return undefined;
  return redact(`${code}: ${(cause as Error).message}`);
}

/**
 * The stream once its first item arrived: errors before it (a refusal, a failed connection) reject
 * here; the stream then yields that item and the rest.
 */
export async function begun<T>(stream: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  return {
    async *[Symbol.asyncIterator]() {
      if (first.done) return;
      yield first.value;
      yield* { [Symbol.asyncIterator]: () => it };
    },
  };
}
