/** Starting a repl (if needed) and reaching its runner through the one client layer. */
import type { RunnerAccess } from "../../gen/devex/core/v1/repl_pb.js";
import type { RunnerClients } from "../../lib/client/clients.js";
import { runnerClientsFor } from "../../lib/client/node.js";
import { CliError, describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import type { Session } from "./session.js";

export interface RunnerSession {
  replId: string;
  access: RunnerAccess;
  runner: RunnerClients;
}

/** Resolves the repl, starts it (StartRepl returns the running runner as is) and opens clients to it. */
export async function openRunner(session: Session, ref: string): Promise<RunnerSession> {
  const repl = await resolveRepl(session.core, ref);
  const res = await session.core.repls.startRepl({ replId: repl.replId }).catch((e) => {
    throw describeError(e, ref);
  });
  const access = res.runner;
  if (!access?.url || !access.token) throw new CliError(`repl ${repl.replId} started without runner access`);
  // Connect over HTTP/1.1: core's /<replId>/ proxy carries HTTP/1.1 and WebSocket only.
  return { replId: repl.replId, access, runner: runnerClientsFor(access.url, { token: access.token }) };
}
