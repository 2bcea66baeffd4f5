/**
 * Templates from the CLI: `devex templates` (the operator's and the user's own, with their run and
 * setup commands and preview port), `devex template save` (a stopped repl becomes a private
 * template), `devex template delete`, and `devex setup <repl>` (where a repl's setup command is, and
 * its output while the repl runs: the runner's background process named "setup").
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { type Repl, ReplStatus, type Setup, SetupStatus } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { runnerClientsFor } from "../../lib/client/node.js";
import { startRunnerSession } from "../../lib/client/runner-session.js";
import { CliError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import { setupLabel } from "./setup-status.js";
import { formatTable } from "./table.js";

/** The name of the runner's background process that runs a repl's setup command (repl.proto, Setup). */
export const SETUP_PROCESS = "setup";

/** A value on one line of a table: a command with a newline shown quoted, with escapes. */
const oneLine = (text: string) => (/[\n\r\t]/.test(text) ? JSON.stringify(text) : text);

export async function listTemplates(core: CoreClients, out: NodeJS.WritableStream): Promise<void> {
  const { templates } = await core.repls.listTemplates({});
  const rows = templates.map((t) => [
    t.name,
    t.title,
    t.owner ? "yours" : "operator",
    oneLine(t.runCommand),
    oneLine(t.setupCommand),
    t.previewPort ? String(t.previewPort) : "",
  ]);
  out.write(formatTable(["NAME", "TITLE", "WHOSE", "RUN", "SETUP", "PORT"], rows));
}

export interface SaveOptions {
  title: string;
  description?: string;
  runCommand?: string;
  setupCommand?: string;
  previewPort?: number;
}

/** `devex template save`: prints the new template's name, then how to create a repl from it. */
export async function saveTemplate(
  core: CoreClients,
  ref: string,
  options: SaveOptions,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<void> {
  const repl = await resolveRepl(core, ref);
  const res = await core.repls.saveTemplate({ replId: repl.replId, ...options }).catch((e) => {
    throw saveError(e, repl, ref);
  });
  const name = res.template?.name ?? "";
  io.stdout.write(`${name}\n`);
  io.stderr.write(
    `saved ${repl.replId} as your template ${name}; create a repl from it: devex create --template ${name}\n`,
  );
}

function saveError(e: unknown, repl: Repl, ref: string): CliError {
  if (!(e instanceof ConnectError && e.code === Code.FailedPrecondition)) return describeError(e, ref);
  // A template is made from the repl's stored files, which a repl only has whole once stopped.
  const id = repl.replId;
  if (repl.status === ReplStatus.STOPPING)
    return new CliError(`cannot save ${id} as a template while it is stopping: wait until devex ls shows it stopped`);
  return new CliError(`cannot save ${id} as a template while it runs: stop the repl first: devex stop ${id}`);
}

/** `devex template delete`: one of the user's own templates; the operator's are not theirs to delete. */
export async function deleteTemplate(core: CoreClients, name: string, out: NodeJS.WritableStream): Promise<void> {
  await core.repls.deleteTemplate({ name }).catch((e) => {
    if (e instanceof ConnectError && e.code === Code.NotFound)
      throw new CliError(`no template ${name} of yours (see devex templates; the operator's cannot be deleted)`);
    throw describeError(e);
  });
  out.write(`deleted template ${name}\n`);
}

/**
 * `devex setup <repl>`: the setup command and where it is; while the repl runs, the output of its
 * "setup" process, and with `follow` what it prints until it ends.
 */
export async function showSetup(
  core: CoreClients,
  ref: string,
  follow: boolean,
  out: NodeJS.WritableStream,
): Promise<void> {
  const repl = await resolveRepl(core, ref);
  let setup = repl.setup;
  if (!setup?.command) {
    out.write(`${repl.replId} has no setup command\n`);
    return;
  }
  // Just started, the runner has not begun it yet: following waits for it to begin.
  if (follow && repl.status === ReplStatus.RUNNING && setup.status === SetupStatus.PENDING)
    setup = await setupPast(core, repl.replId, SetupStatus.PENDING);
  out.write(formatTable(["COMMAND", "STATUS"], [[oneLine(setup?.command ?? ""), setupLabel(setup)]]));
  if (repl.status !== ReplStatus.RUNNING) return;
  const { session } = await startRunnerSession({
    core,
    replId: repl.replId,
    runnerClients: (url, token) => runnerClientsFor(url, { token }),
  }).catch((e) => {
    throw describeError(e, ref);
  });
  const { processes } = session.clients;
  const proc = (await processes.listProcesses({})).processes.findLast((p) => p.name === SETUP_PROCESS);
  if (!proc) return;
  out.write("\n");
  let offset = 0n;
  let ended = false;
  for (;;) {
    const res = await processes.readProcessOutput({ processId: proc.processId, offset });
    out.write(res.data);
    offset = res.nextOffset;
    // Once it has ended, one more read takes what it wrote between the last read and its end.
    if (!follow || ended) break;
    ended = !res.process?.running;
    if (!ended && res.data.length === 0) await new Promise((r) => setTimeout(r, 250));
  }
  // Core hears how it ended from the runner just after the process exits.
  if (follow) out.write(`\nsetup ${setupLabel(await setupPast(core, repl.replId, SetupStatus.RUNNING))}\n`);
}

/** The repl's setup once it is past `status` (or as it is after 30 s). */
async function setupPast(core: CoreClients, replId: string, status: SetupStatus): Promise<Setup | undefined> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { repl } = await core.repls.getRepl({ replId });
    if (repl?.setup?.status !== status || Date.now() > deadline) return repl?.setup;
    await new Promise((r) => setTimeout(r, 200));
  }
}
