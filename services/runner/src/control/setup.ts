/**
 * The repl's setup command (its template's, such as `npm install`): asked of core once the runner
 * is up (RunnerControlService.ClaimSetup hands it out once in the repl's life), run as the
 * background process named "setup" with the repl's environment, so clients see it and its output
 * like any other process, and its end reported back (ReportSetup). A claim core cannot answer is
 * tried again a few times: a setup not claimed now stays pending for the next start.
 */
import { create } from "@bufbuild/protobuf";
import { CommandSpecSchema } from "../../../../gen/devex/runner/v1/process_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import type { Logger } from "../../../../lib/kit/log.js";
import { sleep } from "../../../../lib/kit/sleep.js";
import type { RunnerConfig } from "../config.js";
import type { ProcessRegistry } from "../processes/registry.js";

export const SETUP_PROCESS_NAME = "setup";
const CLAIM_ATTEMPTS = 5;

export interface SetupDeps {
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  processes: ProcessRegistry;
  log: Logger;
  /** Ends the attempts when the runner closes. */
  signal: AbortSignal;
}

async function claim(d: SetupDeps): Promise<string> {
  const ids = { replId: d.replId, runnerId: d.runnerId };
  for (let attempt = 1; ; attempt++) {
    try {
      return (await d.client.claimSetup(ids, { signal: d.signal })).command;
    } catch (err) {
      if (d.signal.aborted || attempt === CLAIM_ATTEMPTS) throw err;
      await sleep(500 * 2 ** attempt, d.signal);
    }
  }
}

/** Runs the setup, if core has one for this repl, in the background; abort when the runner closes. */
export function startSetup(
  config: RunnerConfig,
  client: RunnerControlClient,
  processes: ProcessRegistry,
  log: Logger,
): AbortController | undefined {
  if (!config.core) return undefined;
  const closed = new AbortController();
  const ids = { client, replId: config.replId, runnerId: config.core.runnerId };
  void runSetup({ ...ids, processes, log, signal: closed.signal });
  return closed;
}

async function runSetup(d: SetupDeps): Promise<void> {
  const ids = { replId: d.replId, runnerId: d.runnerId };
  let command: string;
  try {
    command = await claim(d);
  } catch (err) {
    if (!d.signal.aborted) d.log.warn({ err }, "could not ask core for the setup command; it stays pending");
    return;
  }
  if (!command) return;
  let report: { exitCode: number; message: string };
  try {
    const proc = await d.processes.start(create(CommandSpecSchema, { shell: command }), SETUP_PROCESS_NAME);
    d.log.info({ processId: proc.id }, "setup command started");
    await proc.done;
    const exit = proc.exit!;
    report = { exitCode: exit.signal ? -1 : exit.exitCode, message: exit.signal ? `ended by ${exit.signal}` : "" };
  } catch (err) {
    report = { exitCode: -1, message: `could not start: ${(err as Error).message}`.slice(0, 1024) };
  }
  d.log.info(report, "setup command ended");
  await d.client
    .reportSetup({ ...ids, ...report })
    .catch((err) => d.log.warn({ err }, "could not tell core how the setup command ended"));
}
