/**
 * The commands that talk to core or a runner: loaded by main.ts only when one runs, so `devex --help`
 * and completion never load the client, gRPC or protobuf code.
 */
import { buffer, text } from "node:stream/consumers";
import { parseArgs } from "node:util";
import { attachTerminal } from "./attach.js";
import { listAudit } from "./audit.js";
import { login, logout, whoami } from "./auth.js";
import { createCheckpoint, deleteCheckpoint, forkRepl, listCheckpoints, restoreCheckpoint } from "./checkpoints.js";
import { UsageError } from "./cli-error.js";
import { normalizeUrl } from "./config.js";
import { downloadPath, parsePlace, uploadPath } from "./cp.js";
import { deviceLogin } from "./device-login.js";
import { diffCheckpoints, workspacePaths } from "./diff.js";
import { envAction, envRepl } from "./environment.js";
import { execCommand } from "./exec.js";
import { createFromGit, nameFromUrl, parseGitArgument } from "./git-create.js";
import { fetchRepositories, listGitHubRepositories, pickRepository } from "./github.js";
import { readHiddenLine } from "./hidden-input.js";
import { networkFromFlags, networkFromText } from "./network.js";
import { parsePort, parseTtl, previewLink, previewRepl, visibilityFromFlags } from "./preview.js";
import { createRepl, listRepls, networkRepl, removeRepl, startRepl, stopRepl } from "./repls.js";
import { openRunner } from "./runner.js";
import { openSession } from "./session.js";
import { deleteTemplate, listTemplates, saveTemplate, showSetup } from "./templates.js";
import { RunnerLink, transportChoice } from "./transport.js";

type Options = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

function parse(args: string[], options: Options, positionals: number, most = positionals) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const n = parsed.positionals.length;
  if (n < positionals || n > most)
    throw new UsageError(positionals === 0 ? "unexpected arguments" : "expected a repl id or name");
  return {
    values: parsed.values as Record<string, string | boolean | string[] | undefined>,
    positionals: parsed.positionals,
  };
}

const str = (v: string | boolean | string[] | undefined) => (typeof v === "string" ? v : undefined);

/** Runs one command; `devex help` and `devex completion` never get here (main.ts). */
export async function run(argv: string[]): Promise<number> {
  const env = process.env;
  const out = process.stdout;
  const [command, ...rest] = argv;
  switch (command) {
    case "login": {
      const { values } = parse(
        rest,
        { url: { type: "string" }, token: { type: "string" }, scopes: { type: "string" } },
        0,
      );
      const url = str(values.url) ?? env.DEVEX_URL;
      let token = str(values.token);
      const scopes =
        str(values.scopes)
          ?.split(",")
          .map((x) => x.trim())
          .filter(Boolean) ?? [];
      if (!url) throw new UsageError("login needs --url <core-url>");
      if (token && scopes.length)
        throw new UsageError("--scopes is for a login through the browser: a token has its own");
      // No token: approve this login in a browser (device login); --token - reads one from stdin (scripts).
      if (!token) token = await deviceLogin(normalizeUrl(url), out, scopes);
      else if (token === "-") token = (await text(process.stdin)).trim();
      await login(env, url, token, out);
      return 0;
    }
    case "logout":
      parse(rest, {}, 0);
      await logout(env, out);
      return 0;
    case "whoami":
      parse(rest, {}, 0);
      await whoami(env, out);
      return 0;
    case "ls":
    case "list":
      parse(rest, {}, 0);
      await listRepls((await openSession(env)).core, out);
      return 0;
    case "templates":
      parse(rest, {}, 0);
      await listTemplates((await openSession(env)).core, out);
      return 0;
    case "create": {
      const { values } = parse(
        rest,
        {
          template: { type: "string" },
          name: { type: "string" },
          network: { type: "string" },
          git: { type: "string" },
          github: { type: "boolean" },
          "full-history": { type: "boolean" },
          "allow-push": { type: "boolean" },
        },
        0,
      );
      const template = str(values.template);
      const git = str(values.git);
      const github = values.github === true;
      const fullHistory = values["full-history"] === true;
      const allowPush = values["allow-push"] === true;
      const network = str(values.network);
      const egress = network === undefined ? undefined : networkFromText(network);
      if (git !== undefined && github)
        throw new UsageError("--git names a repository and --github picks one of yours: give one of them");
      if (git === undefined && !github) {
        if (!template)
          throw new UsageError("create needs --template <t> (see devex templates), --git <url> or --github");
        if (fullHistory) throw new UsageError("--full-history goes with --git <url> or --github");
        if (allowPush) throw new UsageError("--allow-push goes with --git <url> or --github");
        await createRepl((await openSession(env)).core, template, str(values.name) ?? template, egress, out);
        return 0;
      }
      // From a repository: a template is optional, and gives only its settings (run command, port).
      const named = git === undefined ? undefined : parseGitArgument(git);
      const { core } = await openSession(env);
      const io = { stdin: process.stdin, stdout: out, stderr: process.stderr };
      // --github: one of the user's repositories, at its default branch.
      const { url, ref } = named ?? {
        url: (await pickRepository(await fetchRepositories(core, 1), io)).cloneUrl,
        ref: "",
      };
      const name = str(values.name) ?? nameFromUrl(url);
      const options = { url, ref, fullHistory, allowPush, template: template ?? "", name, egress };
      await createFromGit(core, options, io);
      return 0;
    }
    case "github":
      return github(rest);
    case "template":
      return template(rest);
    case "setup": {
      const { values, positionals } = parse(rest, { follow: { type: "boolean", short: "f" } }, 1);
      await showSetup((await openSession(env)).core, positionals[0], values.follow === true, out);
      return 0;
    }
    case "network":
      return network(rest);
    case "preview":
      return preview(rest);
    case "env":
      return environment(rest);
    case "preview-link": {
      const { values, positionals } = parse(rest, { ttl: { type: "string" }, path: { type: "string" } }, 2);
      const ttl = str(values.ttl);
      const path = str(values.path);
      if (path !== undefined && !path.startsWith("/"))
        throw new UsageError("--path starts with / (a page of the preview)");
      const options = { ttlSeconds: ttl === undefined ? undefined : parseTtl(ttl), path };
      const { core } = await openSession(env);
      await previewLink(core, positionals[0], parsePort(positionals[1]), options, {
        stdout: out,
        stderr: process.stderr,
      });
      return 0;
    }
    case "start":
    case "stop": {
      const { positionals } = parse(rest, {}, 1);
      const { core } = await openSession(env);
      await (command === "start" ? startRepl : stopRepl)(core, positionals[0], out);
      return 0;
    }
    case "rm": {
      const { values, positionals } = parse(rest, { yes: { type: "boolean", short: "y" } }, 1);
      const { core } = await openSession(env);
      await removeRepl(core, positionals[0], values.yes === true, {
        stdin: process.stdin,
        stdout: out,
        stderr: process.stderr,
      });
      return 0;
    }
    case "attach": {
      const { values, positionals } = parse(rest, { terminal: { type: "string" }, command: { type: "string" } }, 1);
      if (values.terminal !== undefined && values.command !== undefined)
        throw new UsageError("--command applies to a new terminal, not with --terminal");
      const transport = transportChoice(env, process.stderr);
      const r = await openRunner(await openSession(env), positionals[0]);
      return attachTerminal(
        new RunnerLink(r, transport, { what: "attach", http1: "websocket" }),
        { terminalId: str(values.terminal), command: str(values.command) },
        { stdin: process.stdin, stdout: out, stderr: process.stderr },
      );
    }
    case "exec":
      return exec(rest);
    case "checkpoint":
      return checkpoint(rest);
    case "checkpoints":
      return checkpoint(["list", ...rest]);
    case "restore": {
      const { positionals } = parse(rest, {}, 0, Number.POSITIVE_INFINITY);
      if (positionals.length !== 2)
        throw new UsageError("restore needs <repl> <checkpoint-id> (see devex checkpoints)");
      const io = { stdout: out, stderr: process.stderr };
      await restoreCheckpoint((await openSession(env)).core, positionals[0], positionals[1], io);
      return 0;
    }
    case "fork":
      return fork(rest);
    case "diff":
      return diff(rest);
    case "cp":
      return cp(rest);
    case "audit": {
      const { values } = parse(
        rest,
        { since: { type: "string" }, limit: { type: "string" }, repl: { type: "string" }, json: { type: "boolean" } },
        0,
      );
      const options = {
        since: str(values.since),
        limit: str(values.limit),
        repl: str(values.repl),
        json: values.json === true,
      };
      await listAudit((await openSession(env)).core, options, out);
      return 0;
    }
    case undefined:
      throw new UsageError("no command given");
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

async function cp(rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, { recursive: { type: "boolean", short: "r" } }, 0, 2);
  if (positionals.length !== 2) throw new UsageError("cp needs a source and a destination, one of them <repl>:<path>");
  const [from, to] = positionals.map(parsePlace);
  if (from.kind === "remote" && to.kind === "remote")
    throw new UsageError("cp copies between this machine and a repl: one side is a local path");
  const options = { recursive: values.recursive === true };
  const remote = from.kind === "remote" ? from : to.kind === "remote" ? to : undefined;
  if (!remote) throw new UsageError("cp copies between this machine and a repl: write one side as <repl>:<path>");
  const transport = transportChoice(process.env, process.stderr);
  const r = await openRunner(await openSession(process.env), remote.repl);
  const link = new RunnerLink(r, transport, { what: "cp", http1: "connect over HTTP/1.1" });
  const io = { stderr: process.stderr };
  const said =
    to.kind === "remote"
      ? await uploadPath(link, from.path, to, options, io)
      : await downloadPath(link, remote, to.path, options, io);
  process.stdout.write(`copied ${said}\n`);
  return 0;
}

async function exec(rest: string[]): Promise<number> {
  const dash = rest.indexOf("--");
  if (dash < 0 || dash === rest.length - 1) throw new UsageError("exec needs -- followed by the command");
  const { values, positionals } = parse(
    rest.slice(0, dash),
    { cwd: { type: "string" }, timeout: { type: "string" }, stdin: { type: "boolean" } },
    1,
  );
  const timeout = str(values.timeout);
  const timeoutSeconds = timeout === undefined ? undefined : Number(timeout.replace(/s$/, ""));
  if (timeoutSeconds !== undefined && !(timeoutSeconds > 0 && timeoutSeconds <= 86_400))
    throw new UsageError("--timeout must be a number of seconds between 1 and 86400");
  const transport = transportChoice(process.env, process.stderr);
  const stdin = values.stdin ? await buffer(process.stdin) : undefined;
  const r = await openRunner(await openSession(process.env), positionals[0]);
  return execCommand(
    new RunnerLink(r, transport, { what: "exec", http1: "connect over HTTP/1.1" }),
    { argv: rest.slice(dash + 1), cwd: str(values.cwd), timeoutSeconds, stdin },
    { stdout: process.stdout, stderr: process.stderr },
  );
}

/** `devex template save <repl> --title T …`, `devex template delete <name>`, `devex template list`. */
async function template(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  const io = { stdout: process.stdout, stderr: process.stderr };
  switch (sub) {
    case "list":
    case "ls":
      parse(args, {}, 0);
      await listTemplates((await openSession(process.env)).core, io.stdout);
      return 0;
    case "save": {
      const text = { type: "string" } as const;
      const { values, positionals } = parse(
        args,
        { title: text, description: text, run: text, setup: text, port: text },
        1,
      );
      const title = str(values.title);
      if (!title) throw new UsageError("template save needs --title <title>");
      const port = str(values.port);
      const options = {
        title,
        description: str(values.description),
        runCommand: str(values.run),
        setupCommand: str(values.setup),
        // 0 is a port of none (a template whose repls preview nothing).
        previewPort: port === undefined ? undefined : port === "0" ? 0 : parsePort(port),
      };
      await saveTemplate((await openSession(process.env)).core, positionals[0], options, io);
      return 0;
    }
    case "delete":
    case "rm": {
      const { positionals } = parse(args, {}, 1);
      await deleteTemplate((await openSession(process.env)).core, positionals[0], io.stdout);
      return 0;
    }
    default:
      throw new UsageError(
        sub === undefined
          ? "template needs save, delete or list"
          : `unknown template command: ${sub} (save, delete or list)`,
      );
  }
}

/**
 * `devex checkpoint <repl> [-m message] [--name name]`, `devex checkpoint list <repl>` (also `devex
 * checkpoints <repl>`), `devex checkpoint delete <repl> <id>`. A word of these first is the command:
 * a repl named "list" is checkpointed by its id.
 */
async function checkpoint(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  const io = { stdout: process.stdout, stderr: process.stderr };
  switch (sub) {
    case "list":
    case "ls": {
      const { values, positionals } = parse(args, { json: { type: "boolean" } }, 1);
      await listCheckpoints((await openSession(process.env)).core, positionals[0], values.json === true, io.stdout);
      return 0;
    }
    case "delete":
    case "rm": {
      const { positionals } = parse(args, {}, 0, Number.POSITIVE_INFINITY);
      if (positionals.length !== 2) throw new UsageError("checkpoint delete needs <repl> <checkpoint-id>");
      await deleteCheckpoint((await openSession(process.env)).core, positionals[0], positionals[1], io.stdout);
      return 0;
    }
    default: {
      const { values, positionals } = parse(
        rest,
        { message: { type: "string", short: "m" }, name: { type: "string" } },
        1,
        Number.POSITIVE_INFINITY,
      );
      if (positionals.length > 1)
        throw new UsageError(`checkpoint takes one <repl>; quote a message: -m "${positionals.slice(1).join(" ")}"`);
      const options = { name: str(values.name), message: str(values.message) };
      await createCheckpoint((await openSession(process.env)).core, positionals[0], options, io);
      return 0;
    }
  }
}

/** `devex fork <repl> [<checkpoint-id>] [--name name] [--count k]`. */
async function fork(rest: string[]): Promise<number> {
  const { values, positionals } = parse(
    rest,
    { name: { type: "string" }, count: { type: "string" } },
    1,
    Number.POSITIVE_INFINITY,
  );
  if (positionals.length > 2) throw new UsageError("fork takes a <repl> and at most one <checkpoint-id>");
  const count = str(values.count);
  if (count !== undefined && !/^[1-9][0-9]*$/.test(count))
    throw new UsageError("--count must be a whole number of repls from 1");
  const options = {
    checkpointId: positionals[1],
    name: str(values.name),
    count: count === undefined ? undefined : Number(count),
  };
  const io = { stdout: process.stdout, stderr: process.stderr };
  await forkRepl((await openSession(process.env)).core, positionals[0], options, io);
  return 0;
}

/** `devex diff <repl> <from> [<to>] [--patch] [--json] [path...]`: paths after <to>, or after -- without one. */
async function diff(rest: string[]): Promise<number> {
  const dash = rest.indexOf("--");
  const flag = { type: "boolean" } as const;
  const { values, positionals } = parse(
    dash < 0 ? rest : rest.slice(0, dash),
    { patch: flag, json: flag },
    0,
    Number.POSITIVE_INFINITY,
  );
  if (positionals.length < 2) throw new UsageError("diff needs <repl> <checkpoint-id> (see devex checkpoints)");
  const [ref, from, to, ...paths] = positionals;
  if (dash >= 0) paths.push(...rest.slice(dash + 1));
  const options = {
    from,
    to,
    patch: values.patch === true,
    json: values.json === true,
    paths: workspacePaths(paths),
  };
  await diffCheckpoints((await openSession(process.env)).core, ref, options, process.stdout);
  return 0;
}

/** `devex github repos`: the GitHub repositories the user's GitHub sign-in reaches. */
async function github(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  switch (sub) {
    case "repos":
    case "ls":
      parse(args, {}, 0);
      await listGitHubRepositories((await openSession(process.env)).core, process.stdout);
      return 0;
    default:
      throw new UsageError(
        sub === undefined ? "github needs repos" : `unknown github command: ${sub} (repos lists your repositories)`,
      );
  }
}

async function network(rest: string[]): Promise<number> {
  const { values, positionals } = parse(
    rest,
    {
      "allow-all": { type: "boolean" },
      "deny-all": { type: "boolean" },
      allow: { type: "string", multiple: true },
      default: { type: "boolean" },
    },
    1,
  );
  const policy = networkFromFlags({
    allowAll: values["allow-all"] === true,
    denyAll: values["deny-all"] === true,
    allow: (values.allow as string[] | undefined) ?? [],
    useDefault: values.default === true,
  });
  await networkRepl((await openSession(process.env)).core, positionals[0], policy, process.stdout);
  return 0;
}

async function preview(rest: string[]): Promise<number> {
  const flag = { type: "boolean" } as const;
  const { values, positionals } = parse(rest, { private: flag, link: flag, public: flag, default: flag }, 1, 2);
  const visibility = visibilityFromFlags({
    private: values.private === true,
    link: values.link === true,
    public: values.public === true,
    default: values.default === true,
  });
  const port = positionals[1] === undefined ? undefined : parsePort(positionals[1]);
  await previewRepl((await openSession(process.env)).core, positionals[0], port, visibility, process.stdout);
  return 0;
}

async function environment(rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, { secret: { type: "boolean" } }, 1, Number.POSITIVE_INFINITY);
  const action = envAction(positionals.slice(1), values.secret === true);
  // Typed on a terminal: without echo, one line. Piped: all of stdin, as sent.
  const readSecret = (name: string) =>
    process.stdin.isTTY
      ? readHiddenLine(process.stdin, process.stderr, `Value of ${name} (not shown): `)
      : text(process.stdin);
  await envRepl((await openSession(process.env)).core, positionals[0], action, { readSecret, stdout: process.stdout });
  return 0;
}
