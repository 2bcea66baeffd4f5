/**
 * How `attach` and `exec` reach the runner through core's /<replId>/ proxy: gRPC over HTTP/2 (h2c,
 * or h2 over TLS), or the HTTP/1.1 path (attach: the WebSocket bridge; exec: Connect). gRPC is the
 * default. When HTTP/2 cannot be had, say behind a proxy that speaks only HTTP/1.1, the gRPC call
 * fails before the runner sent anything, and the HTTP/1.1 path is taken instead. DEVEX_TRANSPORT
 * forces one (no fallback); DEVEX_DEBUG=1 prints the one taken to stderr.
 */
import { ConnectError } from "@connectrpc/connect";
import type { RunnerClients } from "../../lib/client/clients.js";
import { runnerClientsFor } from "../../lib/client/node.js";
import type { RunnerSession } from "../../lib/client/runner-session.js";
import { CliError, UsageError } from "./cli-error.js";
import { redact } from "./errors.js";

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

export type Protocol = "grpc" | "http1";

/**
 * One run's way to the runner: the first call decides the protocol (gRPC, unless forced or its
 * connection fails) and later calls keep it, so an attach's CreateTerminal warms the HTTP/2
 * connection its Attach then uses.
 */
export class RunnerLink {
  private protocol: Protocol | undefined;
  private grpc: RunnerClients | undefined;
  private said = false;

  constructor(
    readonly session: RunnerSession,
    private readonly choice: TransportChoice,
    /** What the debug line says: the command, and its HTTP/1.1 path. */
    private readonly names: { what: string; http1: string },
  ) {
    if (choice.forced) this.protocol = choice.forced === "grpc" ? "grpc" : "http1";
  }

  /**
   * Runs `call` over the protocol. `call` must settle once the runner's first answer arrived (see
   * `begun`), so a fallback never repeats a call the runner already started.
   */
  async call<T>(call: (clients: RunnerClients, protocol: Protocol) => Promise<T>): Promise<T> {
    const protocol = this.protocol ?? "grpc";
    try {
      return this.decided(protocol, await call(this.clients(protocol), protocol));
    } catch (e) {
      const failure = protocol === "grpc" ? connectionFailure(e) : undefined;
      if (failure === undefined) throw e;
      if (this.protocol === "grpc")
        throw new CliError(
          `cannot reach the runner over gRPC (HTTP/2 failed: ${failure}); DEVEX_TRANSPORT=websocket uses HTTP/1.1`,
        );
      this.protocol = "http1";
      return this.decided("http1", await call(this.clients("http1"), "http1"), ` (HTTP/2 failed: ${failure})`);
    }
  }

  /** Keeps the protocol that answered; the debug line names it once. */
  private decided<T>(protocol: Protocol, result: T, why = ""): T {
    this.protocol = protocol;
    if (!this.said) this.choice.debug?.(`${this.names.what}: ${protocol === "grpc" ? "grpc" : this.names.http1}${why}`);
    this.said = true;
    return result;
  }

  private clients(protocol: Protocol): RunnerClients {
    if (protocol === "http1") return this.session.clients;
    this.grpc ??= runnerClientsFor(this.session.access.url, { token: () => this.session.token, protocol: "grpc" });
    return this.grpc;
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
