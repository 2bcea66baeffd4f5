/** Starting a repl (if needed) and reaching its runner through the one client layer. */
import { runnerClientsFor } from "../../lib/client/node.js";
import { type RunnerSession, startRunnerSession } from "../../lib/client/runner-session.js";
import { describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import type { Session } from "./session.js";

/**
 * Resolves the repl, starts it (StartRepl returns the running runner as is) and opens clients to it:
 * Connect over HTTP/1.1, which every proxy in front of core carries.
 */
export async function openRunner(session: Session, ref: string): Promise<RunnerSession> {
  const repl = await resolveRepl(session.core, ref);
  const started = await startRunnerSession({
    core: session.core,
    replId: repl.replId,
    runnerClients: (url, token) => runnerClientsFor(url, { token }),
  }).catch((e) => {
    throw describeError(e, ref);
  });
  return started.session;
}
