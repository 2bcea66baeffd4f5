/**
 * `devex env`: a repl's environment variables and secrets. Lists them (a secret by name only: its
 * value is never returned), sets plain ones from `NAME=VALUE` arguments and a secret from stdin
 * (never from argv, where `ps` shows it; typed without echo on a terminal), removes them.
 */
import type { EnvironmentVariable } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { isEnvironmentName } from "../../lib/contracts/environment-names.js";
import { CliError, UsageError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import { formatTable } from "./table.js";

/** What `devex env` was asked to do, checked before anything is sent. */
export type EnvAction =
  | { kind: "list" }
  | { kind: "set"; variables: Array<{ name: string; value: string }> }
  | { kind: "set-secret"; name: string }
  | { kind: "rm"; names: string[] };

function checkName(name: string): string {
  if (!isEnvironmentName(name))
    throw new UsageError(
      `${JSON.stringify(name)} is not a variable name: a letter or _, then letters, digits or _ (at most 128)`,
    );
  return name;
}

/** `[set NAME=VALUE... | set --secret NAME | rm NAME...]` → the action. */
export function envAction(args: string[], secret: boolean): EnvAction {
  const [sub, ...rest] = args;
  if (secret && sub !== "set") throw new UsageError("--secret goes with env <repl> set");
  switch (sub) {
    case undefined:
      return { kind: "list" };
    case "set":
      if (!rest.length) throw new UsageError("env set needs NAME=VALUE (or --secret NAME, the value on stdin)");
      if (secret) {
        if (rest.length > 1 || rest[0].includes("="))
          throw new UsageError("env set --secret takes one NAME and reads its value from stdin, never from arguments");
        return { kind: "set-secret", name: checkName(rest[0]) };
      }
      return {
        kind: "set",
        variables: rest.map((arg) => {
          const eq = arg.indexOf("=");
          if (eq < 0) throw new UsageError(`${JSON.stringify(arg)} is not NAME=VALUE`);
          return { name: checkName(arg.slice(0, eq)), value: arg.slice(eq + 1) };
        }),
      };
    case "rm":
      if (!rest.length) throw new UsageError("env rm needs a NAME");
      return { kind: "rm", names: rest.map(checkName) };
    default:
      throw new UsageError(`unknown env command: ${sub} (set or rm)`);
  }
}

/** A secret's value as read from stdin: one trailing newline (that of `echo` or a typed line) dropped. */
export function secretFromStdin(text: string, name: string): string {
  const value = text.replace(/\r?\n$/, "");
  if (!value) throw new UsageError(`env set --secret ${name} reads the value from stdin, which was empty`);
  return value;
}

/** A value on one line: one with control characters (a newline) is shown quoted, with escapes. */
const control = (c: string) => c < " " || c === "\x7f";
const shown = (value: string) => ([...value].some(control) ? JSON.stringify(value) : value);

/** The variables as core lists them (by name), a secret's value never shown. */
export function formatVariables(variables: EnvironmentVariable[]): string {
  const rows = variables.map((v) => [v.name, v.secret ? "(secret)" : shown(v.value), v.secret ? "yes" : "no"]);
  return formatTable(["NAME", "VALUE", "SECRET"], rows);
}

type Variables = { variables: EnvironmentVariable[] };

/**
 * One call per name, in order (core has no call that changes several): a failure after the first
 * leaves the earlier ones applied, and the error says which were and which were not.
 */
async function oneByOne<T extends { name: string }>(
  items: T[],
  verb: "set" | "removed",
  ref: string,
  apply: (item: T) => Promise<Variables>,
): Promise<Variables> {
  let last: Variables = { variables: [] };
  for (const [i, item] of items.entries()) {
    try {
      last = await apply(item);
    } catch (e) {
      const err = describeError(e, ref);
      if (i === 0) throw err;
      const names = (list: T[]) => list.map((x) => x.name).join(", ");
      throw new CliError(
        `${err.message} (already ${verb}: ${names(items.slice(0, i))}; not ${verb}: ${names(items.slice(i))})`,
        err.exitCode,
      );
    }
  }
  return last;
}

export async function envRepl(
  core: CoreClients,
  ref: string,
  action: EnvAction,
  io: { readSecret: (name: string) => Promise<string>; stdout: NodeJS.WritableStream },
): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const call = <T>(p: Promise<T>) =>
    p.catch((e) => {
      throw describeError(e, ref);
    });
  let result: Variables;
  switch (action.kind) {
    case "list":
      result = await call(core.repls.listEnvironmentVariables({ replId }));
      break;
    case "set":
      result = await oneByOne(action.variables, "set", ref, (v) =>
        core.repls.setEnvironmentVariable({ replId, ...v, secret: false }),
      );
      break;
    case "set-secret": {
      const value = secretFromStdin(await io.readSecret(action.name), action.name);
      result = await call(core.repls.setEnvironmentVariable({ replId, name: action.name, value, secret: true }));
      break;
    }
    case "rm":
      result = await oneByOne(
        action.names.map((name) => ({ name })),
        "removed",
        ref,
        ({ name }) => core.repls.deleteEnvironmentVariable({ replId, name }),
      );
      break;
  }
  io.stdout.write(formatVariables(result.variables));
}
