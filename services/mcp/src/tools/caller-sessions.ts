/**
 * Each caller's sessions on the runners of their repls (lib/client/runner-session.ts), by caller and
 * repl. A session is made by StartRepl as the caller and renewed the same way when its token is about
 * to expire; the repl must be running (tools never start a repl by surprise).
 */
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Repl, ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients, RunnerClients } from "../../../../lib/client/clients.js";
import {
  type RunnerClientsFactory,
  type RunnerSession,
  startRunnerSession,
} from "../../../../lib/client/runner-session.js";
import { failedPrecondition, notFound } from "../../../../lib/kit/errors.js";
import { statusName } from "./summaries.js";
import type { Caller } from "./tool-context.js";

export interface CallerSessionsOptions {
  core(caller: Caller): CoreClients;
  runner: RunnerClientsFactory;
  now: () => number;
}

export class CallerSessions {
  private readonly sessions = new Map<string, RunnerSession>();

  constructor(private readonly o: CallerSessionsOptions) {}

  /** The caller's repl; a repl id they do not have names the ones they do have. */
  async getRepl(caller: Caller, replId: string): Promise<Repl> {
    try {
      const { repl } = await this.o.core(caller).repls.getRepl({ replId });
      return repl!;
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.NotFound) return this.unknownRepl(caller, replId);
      throw e;
    }
  }

  /** The caller's session on the repl's runner, renewed when its token is about to expire. */
  async sessionOf(caller: Caller, replId: string): Promise<RunnerSession> {
    const cached = this.sessions.get(key(caller, replId));
    if (cached && !cached.needsRefresh()) return cached;
    const repl = await this.getRepl(caller, replId);
    if (repl.status !== ReplStatus.RUNNING) {
      throw failedPrecondition(`repl "${replId}" is ${statusName(repl.status)}: call start_repl first`);
    }
    return (await this.startSession(caller, replId)).session;
  }

  /** Clients for the repl's runner (see sessionOf). */
  async runnerOf(caller: Caller, replId: string): Promise<RunnerClients> {
    return (await this.sessionOf(caller, replId)).clients;
  }

  /** StartRepl as the caller; the runner it returns becomes the caller's session for the repl. */
  async startSession(caller: Caller, replId: string) {
    const started = await startRunnerSession({
      core: this.o.core(caller),
      replId,
      runnerClients: this.o.runner,
      now: this.o.now,
    });
    this.sessions.set(key(caller, replId), started.session);
    return started;
  }

  /** Drops the caller's session (the repl is being stopped or deleted). */
  forget(caller: Caller, replId: string): void {
    this.sessions.delete(key(caller, replId));
  }

  /** A repl id the caller does not have: say which ones they do have. */
  private async unknownRepl(caller: Caller, replId: string): Promise<never> {
    const { repls } = await this.o.core(caller).repls.listRepls({});
    const ids = repls.map((r) => r.replId);
    throw notFound(
      `repl "${replId}" not found. ${ids.length ? `Your repls: ${ids.join(", ")}.` : "You have no repls: create one with create_repl."}`,
    );
  }
}

/**
 * Per token, not per user: a runner session holds a runner token minted for the API token that
 * started it, with that token's scopes (a read-only agent's and its user's own differ).
 */
const key = (caller: Caller, replId: string) => `${createHash("sha256").update(caller.token).digest("hex")}/${replId}`;
