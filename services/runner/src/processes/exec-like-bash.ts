/**
 * Runs an argv command the way bash runs a simple command: a name without a slash is searched on
 * the command's PATH (a file found but not executable is passed over for a later executable one),
 * and a command that cannot run ends with bash's exit code and one-line message on stderr:
 * 127 `bash: x: command not found` / `No such file or directory` / `cannot execute: required file
 * not found` (a missing interpreter), 126 `Permission denied` / `Is a directory` / `Not a directory`.
 *
 * Why a few lines of bash in front of the program rather than a lookup in the runner: the lookup
 * must see the files as the command sees them, with its PATH, cwd and user. Inside the sandbox the
 * command's view is narrower than the runner's (no runner code such as node_modules/.bin, its own
 * /tmp), so only a check made after the sandbox prefix is right on every driver and sandbox mode;
 * and a failed execve in bwrap or Node leaves no exit code to tell from a program's own. Bash is
 * there already (the `shell` form, terminals), costs a few milliseconds, and its `exec` keeps the
 * program's pid, process group and argv[0]. `-p` keeps BASH_ENV, SHELLOPTS and exported functions
 * in the environment from changing what the check does; the program gets the environment
 * unchanged but for bash's PWD and SHLVL (and SHELLOPTS when set), as from any shell.
 */
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/**
 * $1 the program, the rest its arguments; $0 is "bash" so that bash's own messages say so. The
 * check's variables are local: a name the command's environment exports must reach it untouched.
 * `exec` searches PATH itself the same way and keeps argv[0] as given.
 */
// biome-ignore-start lint/suspicious/noTemplateCurlyInString: bash's parameter expansions, not templates
const script = [
  "check() {",
  "  local f=$1 p=$1 lose= rest= c= why= line= interpreter=",
  "  if [[ $f != */* ]]; then",
  "    p= rest=$PATH:",
  "    while [[ $rest ]]; do",
  "      c=${rest%%:*} rest=${rest#*:}",
  "      c=${c:-.}/$f",
  "      if [[ -x $c && ! -d $c ]]; then p=$c; break; fi",
  "      [[ $lose || ! -e $c || -d $c ]] || lose=$c",
  "    done",
  "    p=${p:-$lose}",
  '    [[ $p ]] || { echo "bash: $f: command not found" >&2; return 127; }',
  "  fi",
  '  if [[ -d $p ]]; then echo "bash: $p: Is a directory" >&2; return 126; fi',
  "  if [[ ! -e $p ]]; then",
  '    why=$(: 2>&1 <"$p"); why=${why##*: }',
  '    echo "bash: $p: $why" >&2',
  '    [[ $why == "No such file or directory" ]] && return 127 || return 126',
  "  fi",
  '  if [[ ! -x $p ]]; then echo "bash: $p: Permission denied" >&2; return 126; fi',
  '  [[ -f $p && -r $p ]] && IFS= read -r -n 256 line 2>/dev/null <"$p"',
  '  [[ $line == "#!"* ]] || return 0',
  '  line=${line#??}; line=${line#"${line%%[! \t]*}"}; interpreter=${line%%[ \t]*}',
  "  if [[ $interpreter && ! -e $interpreter ]]; then",
  '    echo "bash: $p: cannot execute: required file not found" >&2; return 127',
  "  fi",
  "}",
  'check "$1" || exit',
  "unset -f check",
  'exec -- "$@"',
].join("\n");
// biome-ignore-end lint/suspicious/noTemplateCurlyInString: bash's parameter expansions, not templates

/** The argv that runs `[file, ...args]` through `bash` (an absolute path) like a shell would. */
export function execLikeBash(bash: string, file: string, args: string[]): string[] {
  return [bash, "-p", "-c", script, "bash", file, ...args];
}

/**
 * The system's bash, in directories a sandboxed command sees as its runner does (/usr, /bin), so
 * neither the command's PATH nor the runner's (which may name the runner's own code) decides it.
 */
export function findBash(): string | undefined {
  for (const dir of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    try {
      accessSync(join(dir, "bash"), constants.X_OK);
      return join(dir, "bash");
    } catch {}
  }
  return undefined;
}
