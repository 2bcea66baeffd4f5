/**
 * The operator's commands, sent to a running core through its admin socket
 * (`<DEVEX_DATA_DIR>/admin/core.sock`, admin/admin-socket.ts), so they work while core runs, with the
 * embedded store as with Redis. Run them as core's user (or root), in core's environment:
 *
 *   node dist/core/cli.mjs create-token --user <user> --name <name> [--ttl 30d] [--scopes repls:read,files:read]
 *   node dist/core/cli.mjs login-link [--user <user>] [--ttl 15m]
 *   node dist/core/cli.mjs audit [--user <user>] [--repl <id>] [--since 1h|<date>] [--limit 100] [--json]
 *   node dist/core/cli.mjs add-template --name <name> --from <folder | git URL[#branch]>
 *   node dist/core/cli.mjs remove-template --name <name>
 *
 * The secret (a token, or a link that signs someone in) goes to stdout, once; what it is to stderr.
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { auditJsonLines, auditTable, collectAuditEvents, sinceTime } from "../../../lib/client/audit-listing.js";
import type { CoreAdminClient } from "../../../lib/client/clients.js";
import { coreAdminClientFor } from "../../../lib/client/node.js";
import { configOrExit, loadConfig, parseDuration } from "../../../lib/kit/config.js";
import { adminSocketPath } from "./admin/admin-socket.js";
import { coreConfigSchema } from "./config.js";

const usage = [
  "usage: node dist/core/cli.mjs create-token --user <user> --name <name> [--ttl 30d] [--scopes a,b]",
  "       node dist/core/cli.mjs login-link [--user <user>] [--ttl 15m]",
  "       node dist/core/cli.mjs audit [--user <user>] [--repl <id>] [--since 1h|<date>] [--limit 100] [--json]",
  "       node dist/core/cli.mjs add-template --name <name> --from <folder | git URL[#branch]>",
  "       node dist/core/cli.mjs remove-template --name <name>",
].join("\n");

class UsageError extends Error {}

type Values = Record<string, string | undefined>;
/** A command checks its arguments, then returns what it sends to core. */
type Command = (values: Values) => (admin: CoreAdminClient) => Promise<void>;

const commands: Record<string, Command> = {
  "create-token"(values) {
    if (!values.user) throw new UsageError("--user is required: the user id the token acts as");
    if (!values.name) throw new UsageError("--name is required: a name to recognise the token by");
    const scopes = values.scopes ? values.scopes.split(",").map((x) => x.trim()) : [];
    const request = { userId: values.user, name: values.name, ttl: ttlOf(values.ttl), scopes };
    return async (admin) => {
      const { token, secret } = await admin.createUserToken(request);
      const expires = token?.expireTime ? timestampDate(token.expireTime).toISOString() : "never";
      process.stderr.write(
        `API token "${token?.name}" (id ${token?.tokenId}) for ${request.userId}, expires ${expires}\n`,
      );
      process.stdout.write(`${secret}\n`);
    };
  },
  "login-link"(values) {
    const request = { userId: values.user ?? "", ttl: ttlOf(values.ttl) };
    return async (admin) => {
      const link = await admin.createLoginLink(request);
      const expires = link.expireTime ? timestampDate(link.expireTime).toISOString() : "";
      process.stderr.write(`A login link for ${link.userId}: it works once, until ${expires}\n`);
      process.stdout.write(`${link.url}\n`);
    };
  },
  "add-template"(values) {
    if (!values.name) throw new UsageError("--name is required: what users pick the template by");
    if (!values.from) throw new UsageError("--from is required: a folder with a template.json, or a git URL");
    const from = values.from;
    const source = from.includes("://")
      ? { case: "gitUrl" as const, value: from }
      : { case: "folder" as const, value: resolve(from) };
    return async (admin) => {
      const { template } = await admin.addTemplate({ name: values.name, source });
      process.stderr.write(`template "${template?.name}" (${template?.title}) added; every user can create from it\n`);
    };
  },
  "remove-template"(values) {
    if (!values.name) throw new UsageError("--name is required: the template to remove");
    return async (admin) => {
      await admin.removeTemplate({ name: values.name });
      process.stderr.write(`template "${values.name}" removed; repls made from it keep their files\n`);
    };
  },
  audit(values) {
    const startTime = values.since === undefined ? undefined : sinceTime(values.since);
    if (values.since !== undefined && !startTime)
      throw new UsageError(`--since "${values.since}" is not a duration such as 1h or 7d, nor a date`);
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError("--limit must be a whole number from 1");
    const filter = { userId: values.user ?? "", replId: values.repl ?? "", startTime };
    return async (admin) => {
      const events = await collectAuditEvents(limit, (pageSize, pageToken) =>
        admin.listAuditEvents({ ...filter, pageSize, pageToken }),
      );
      if (values.json) process.stdout.write(auditJsonLines(events));
      else if (!events.length) process.stderr.write("no audit events\n");
      else process.stdout.write(auditTable(events, true));
    };
  },
};

function parsed(args: string[]): Values {
  try {
    const options = {
      user: { type: "string" },
      name: { type: "string" },
      ttl: { type: "string" },
      scopes: { type: "string" },
      repl: { type: "string" },
      since: { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean" },
      from: { type: "string" },
    } as const;
    const { values } = parseArgs({ args, options });
    return { ...values, json: values.json ? "true" : undefined };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function ttlOf(text: string | undefined) {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (!ms) throw new UsageError(`--ttl "${text}" is not a duration such as 15m, 12h or 30d`);
  return durationFromMs(ms);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const run = command ? commands[command] : undefined;
  if (!run) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const values = parsed(rest);
  const send = run(values);
  const config = configOrExit(() => loadConfig(coreConfigSchema));
  const socketPath = adminSocketPath(config.DEVEX_DATA_DIR);
  const problem = socketProblem(socketPath, config.DEVEX_DATA_DIR);
  if (problem) {
    process.stderr.write(`${problem}\n`);
    return 1;
  }
  await send(coreAdminClientFor(socketPath));
  return 0;
}

/** Why the socket cannot be used, if it cannot. */
function socketProblem(socketPath: string, dataDir: string): string | undefined {
  try {
    statSync(socketPath);
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EACCES") return notCoresUser;
    return `core is not running with DEVEX_DATA_DIR=${dataDir} (no ${socketPath}): start it, or set DEVEX_DATA_DIR as core has it`;
  }
}

const notCoresUser = "cannot open core's admin socket: run this as the user core runs as (or root)";

/** What went wrong, in words an operator can act on. */
function explain(err: unknown): string {
  const e = ConnectError.from(err);
  const cause = `${e.message} ${String(e.cause ?? "")}`;
  if (/\bE(ACCES|PERM)\b/.test(cause)) return notCoresUser;
  if (/\bE(CONNREFUSED|NOENT)\b/.test(cause)) return "core's admin socket does not answer: is core running?";
  return e.rawMessage;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) process.stderr.write(`${err.message}\n${usage}\n`);
    else process.stderr.write(`${explain(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
