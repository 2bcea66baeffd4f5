/**
 * `devex completion bash|zsh`: a completion script for the shell, completing commands and their
 * options. Install with `devex completion bash > /etc/bash_completion.d/devex` (or
 * `source <(devex completion bash)` in ~/.bashrc); zsh loads the same script through bashcompinit.
 */
import { UsageError } from "./cli-error.js";

/** Every command with its options: the one list completion reads (main.ts's usage says the same). */
export const commandOptions: Record<string, string[]> = {
  login: ["--url", "--token", "--scopes"],
  logout: [],
  whoami: [],
  ls: [],
  templates: [],
  template: ["save", "delete", "list", "--title", "--description", "--run", "--setup", "--port"],
  setup: ["--follow"],
  create: ["--template", "--git", "--github", "--full-history", "--allow-push", "--name", "--network"],
  github: ["repos"],
  start: [],
  stop: [],
  rm: ["--yes"],
  attach: ["--terminal", "--command"],
  exec: ["--cwd", "--timeout", "--stdin", "--"],
  cp: ["-r", "--recursive"],
  checkpoint: ["list", "delete", "-m", "--message", "--name"],
  checkpoints: ["--json"],
  restore: [],
  fork: ["--name", "--count"],
  diff: ["--patch", "--json", "--"],
  network: ["--allow-all", "--deny-all", "--allow", "--default"],
  preview: ["--private", "--link", "--public", "--default"],
  "preview-link": ["--ttl", "--path"],
  env: ["set", "rm", "--secret"],
  audit: ["--since", "--limit", "--repl", "--json"],
  completion: ["bash", "zsh"],
  help: [],
};

const bash = () => `# devex completion for bash (and zsh through bashcompinit)
_devex() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${Object.keys(commandOptions).join(" ")}" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${Object.entries(commandOptions)
  .filter(([, options]) => options.length)
  .map(([command, options]) => `    ${command}) COMPREPLY=($(compgen -W "${options.join(" ")}" -- "$cur")) ;;`)
  .join("\n")}
  esac
}
complete -o default -F _devex devex
`;

export function completionScript(shell: string | undefined): string {
  if (shell === "bash") return bash();
  if (shell === "zsh") return `autoload -U +X bashcompinit && bashcompinit\n${bash()}`;
  throw new UsageError("completion needs a shell: devex completion bash (or zsh)");
}
