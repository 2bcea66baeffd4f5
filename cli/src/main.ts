/**
 * `devex`: the command line client. Every call goes through lib/client; every failure through
 * errors.ts (one line on stderr, exit 1; usage errors exit 2). Help and shell completion answer from
 * here; the commands (commands.ts) are imported only when one runs, so that they answer at once.
 */

import { CliError, UsageError } from "./cli-error.js";
import { completionScript } from "./completion.js";

const usage = `usage: devex <command> [options]

  login --url <core-url> [--token <token>]     sign in: approve in your browser, or with an API token
        [--scopes repls:read,files:read]       (--token - reads it from stdin); --scopes limits
                                               what the browser-approved token may do
  logout                                       forget the stored login
  whoami                                       show the signed-in user
  ls                                           list your repls (with their network mode and setup)
  templates                                    list the templates: the operator's and yours, with
                                               their run and setup commands and preview port
  template save <repl> --title <t> [--description <d>] [--run <cmd>] [--setup <cmd>] [--port <n>]
                                               save a stopped repl as your private template (its
                                               files, commands, port, network policy and plain
                                               variables, never secrets); prints its name
  template delete <name>                       delete one of your templates (repls keep their files)
  setup <repl> [--follow]                      the repl's setup command (run once, on its first
                                               start) and its state; while the repl runs, its output
                                               (--follow: until it ends)
  create --template <t> [--name <n>] [--network allow-all|deny-all|<list>]
                                               create a repl, print its id; --network sets its
                                               egress policy (a list makes an allowlist)
  create --git <url>[#<ref>] [--full-history] [--allow-push] [--template <t>] [--name <n>] [--network ...]
                                               create a repl from a git repository (public, or
                                               one your GitHub sign-in reaches) at its default
                                               branch, or the branch, tag or full commit id after
                                               # (shallow unless --full-history): prints its id,
                                               shows the clone's progress on a terminal, then
                                               prints the commit once it runs; a failed clone
                                               exits 1 saying why (the repl is deleted). The
                                               template, if any, gives only its settings.
                                               --allow-push lets git in the repl push to that
                                               repository (only that one) with your GitHub grant,
                                               no credential in the repl (needs a GitHub sign-in)
  create --github [--full-history] [--allow-push] [--template <t>] [--name <n>] [--network ...]
                                               the same with one of your GitHub repositories,
                                               picked by number on a terminal (without one, the
                                               list is printed: pass --git <clone url>)
  github repos                                 list the GitHub repositories your GitHub sign-in
                                               reaches (private ones too): name, visibility,
                                               default branch, last push and clone URL
  start <repl> | stop <repl>                   start or stop a repl
  rm <repl> [--yes]                            delete a repl (asks unless --yes)
  attach <repl> [--terminal <id>] [--command <cmd>]
                                               attach this terminal to a new (or an existing)
                                               repl terminal; Ctrl-] detaches
  exec <repl> [--cwd <dir>] [--timeout <s>] [--stdin] -- <argv...>
                                               run a command, stream its output, exit with its code
  cp [-r] <local> <repl>:<path>                copy a file (or with -r a folder) into a repl, or
  cp [-r] <repl>:<path> <local>                out of one: streamed whatever the size, checked
                                               with SHA-256, a broken download resumed; progress
                                               on a terminal; into a folder keeps the name
  checkpoint <repl> [-m <message>] [--name <name>]
                                               name the repl's current files (a running repl's are
                                               saved first; its programs keep running); prints the
                                               checkpoint's id
  checkpoints <repl> [--json]                  list its checkpoints, newest first: yours and the
  (or checkpoint list <repl>)                  automatic ones (before-stop, before-restore, fork)
  checkpoint delete <repl> <checkpoint-id>     delete one (forks made from it keep their files)
  restore <repl> <checkpoint-id>               put the repl's files back as they were then (a
                                               running repl restarts: its terminals and programs
                                               end); the current files are checkpointed first:
                                               prints that checkpoint's id, to restore to undo it
  fork <repl> [<checkpoint-id>] [--name <n>] [--count <k>]
                                               make k new stopped repls (up to 20) from a
                                               checkpoint, or from the current files; prints
                                               their ids. Named <n> (or the repl's), " #1"... with k
  diff <repl> <from-id> [<to-id>] [--patch] [--json] [path...]
                                               files added (A), removed (D) and changed (M: content
                                               or mode) from one checkpoint to another, or to the
                                               current files; --patch adds unified diffs of text
                                               files (saying why one is left out). Without <to-id>
                                               give paths after --: diff <repl> <id> -- src/
  network <repl> [--allow-all | --deny-all | --allow <list>... | --default]
                                               show where the repl's programs may connect, or
                                               change it (applies to a running repl at once);
                                               --allow makes an allowlist (with --allow-all it
                                               opens private CIDRs); --default takes the template's
                                               or the server's default
  preview <repl> [<port>] [--private | --link | --public | --default]
                                               show who may open the repl's previews, or change
                                               it for one port (or, without one, every port
                                               without its own); --default unsets a port's own;
                                               making one private revokes the repl's links
  preview-link <repl> <port> [--ttl 24h] [--path /page]
                                               print a link that opens that port's preview
                                               without signing in (the port shared --link)
  env <repl>                                   list the repl's environment variables (a secret's
                                               value is never shown)
  env <repl> set NAME=VALUE...                 set variables; new terminals and commands get
                                               them within a second, running ones keep theirs
  env <repl> set --secret NAME                 set a secret, its value read from stdin (typed
                                               without echo on a terminal; never from arguments);
                                               it is stored encrypted, write-only
  env <repl> rm NAME...                        remove variables or secrets
  audit [--since 1h|<date>] [--limit <n>] [--repl <id>] [--json]
                                               your audit log, newest first: who changed what,
                                               when, from where, and how it ended
  completion bash|zsh                          print a shell completion script
                                               (source <(devex completion bash))

<repl> is a repl id or a unique name. <list> is domains ("registry.npmjs.org", "*.github.com")
and address ranges ("203.0.113.0/24", "2001:db8::/32"), separated by commas.
DEVEX_URL and DEVEX_TOKEN override the stored login.
attach and exec use gRPC (HTTP/2) and fall back to HTTP/1.1 (attach: the WebSocket bridge; exec:
Connect) where HTTP/2 is not available. DEVEX_TRANSPORT=grpc or DEVEX_TRANSPORT=websocket uses only
that one; DEVEX_DEBUG=1 prints the one used to stderr.
`;

async function fail(e: unknown): Promise<never> {
  const err = e instanceof CliError ? e : (await import("./errors.js")).describeError(e);
  process.stderr.write(`devex: ${err.message}\n`);
  if (err instanceof UsageError) process.stderr.write(`\n${usage}`);
  process.exit(err.exitCode);
}

// A closed stdout (`devex exec r -- cat big | head`) ends us quietly, as SIGPIPE ends a shell command.
process.stdout.on("error", (e: NodeJS.ErrnoException) => process.exit(e.code === "EPIPE" ? 141 : 1));
process.on("uncaughtException", fail);

async function main(argv: string[]): Promise<number> {
  switch (argv[0]) {
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return 0;
    case "completion":
      process.stdout.write(completionScript(argv[1]));
      return 0;
    default:
      return (await import("./commands.js")).run(argv);
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), fail);
