/** Repl commands: ls, create, start, stop, rm, network, and resolving a repl by id or name. */
import { createInterface } from "node:readline/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Repl, ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { CliError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { gitLabel } from "./git-create.js";
import { formatNetwork, networkModeName, type PolicyInit } from "./network.js";
import { setupLabel } from "./setup-status.js";
import { formatTable } from "./table.js";

const replIdPattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function stateName(status: ReplStatus): string {
  return (ReplStatus[status] ?? "UNSPECIFIED").replace(/^REPL_STATUS_/, "").toLowerCase();
}

async function listAll(core: CoreClients): Promise<Repl[]> {
  const repls: Repl[] = [];
  let pageToken = "";
  do {
    const res = await core.repls.listRepls({ pageSize: 500, pageToken });
    repls.push(...res.repls);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return repls;
}

/**
 * The caller's repl named by `ref`: an id (asked of core directly, so another user's repl is the
 * same NotFound as a missing one) or else a unique name.
 */
export async function resolveRepl(core: CoreClients, ref: string): Promise<Repl> {
  if (replIdPattern.test(ref)) {
    try {
      const { repl } = await core.repls.getRepl({ replId: ref });
      if (repl) return repl;
    } catch (e) {
      if (!(e instanceof ConnectError && e.code === Code.NotFound)) throw describeError(e, ref);
    }
  }
  const named = (await listAll(core)).filter((r) => r.name === ref);
  if (named.length === 1) return named[0];
  if (named.length > 1)
    throw new CliError(
      `${named.length} repls are named "${ref}": use an id (${named.map((r) => r.replId).join(", ")})`,
    );
  throw new CliError(`no repl ${ref} (see devex ls)`);
}

export async function listRepls(core: CoreClients, out: NodeJS.WritableStream): Promise<void> {
  const repls = await listAll(core);
  const rows = repls.map((r) => [
    r.replId,
    r.name,
    r.template,
    stateName(r.status),
    networkModeName(r.egress),
    setupLabel(r.setup),
  ]);
  const headers = ["ID", "NAME", "TEMPLATE", "STATE", "NETWORK", "SETUP"];
  // Repls made from a repository: where their files came from, as a last column only when there are some.
  if (repls.some((r) => r.git?.source)) {
    headers.push("SOURCE");
    for (const [i, r] of repls.entries()) rows[i].push(gitLabel(r.git));
  }
  out.write(formatTable(headers, rows));
}

export async function createRepl(
  core: CoreClients,
  template: string,
  name: string,
  egress: PolicyInit | undefined,
  out: NodeJS.WritableStream,
): Promise<void> {
  const { repl } = await core.repls.createRepl({ template, name, egress });
  out.write(`${repl?.replId}\n`);
}

export async function startRepl(core: CoreClients, ref: string, out: NodeJS.WritableStream): Promise<void> {
  const repl = await resolveRepl(core, ref);
  const res = await core.repls.startRepl({ replId: repl.replId }).catch((e) => {
    throw describeError(e, ref);
  });
  out.write(`${repl.replId} ${stateName(res.repl?.status ?? ReplStatus.RUNNING)}\n`);
}

export async function stopRepl(core: CoreClients, ref: string, out: NodeJS.WritableStream): Promise<void> {
  const repl = await resolveRepl(core, ref);
  const res = await core.repls.stopRepl({ replId: repl.replId }).catch((e) => {
    throw describeError(e, ref);
  });
  out.write(`${repl.replId} ${stateName(res.repl?.status ?? ReplStatus.STOPPED)}\n`);
}

export async function removeRepl(
  core: CoreClients,
  ref: string,
  yes: boolean,
  io: {
    stdin: NodeJS.ReadableStream & { isTTY?: boolean };
    stdout: NodeJS.WritableStream;
    stderr: NodeJS.WritableStream;
  },
): Promise<void> {
  const repl = await resolveRepl(core, ref);
  if (!yes) {
    if (!io.stdin.isTTY) throw new CliError(`refusing to delete ${repl.replId} without confirmation: add --yes`);
    const rl = createInterface({ input: io.stdin, output: io.stderr });
    const answer = await rl.question(`Delete repl ${repl.replId} ("${repl.name}") and its files? [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("not deleted");
  }
  await core.repls.deleteRepl({ replId: repl.replId }).catch((e) => {
    throw describeError(e, ref);
  });
  io.stdout.write(`deleted ${repl.replId}\n`);
}

/** `devex network`: shows the repl's egress policy, after setting it when `policy` is given. */
export async function networkRepl(
  core: CoreClients,
  ref: string,
  policy: PolicyInit | undefined,
  out: NodeJS.WritableStream,
): Promise<void> {
  let repl = await resolveRepl(core, ref);
  if (policy) {
    const res = await core.repls.setEgressPolicy({ replId: repl.replId, egress: policy }).catch((e) => {
      throw describeError(e, ref);
    });
    if (res.repl) repl = res.repl;
  }
  out.write(formatNetwork(repl));
}
