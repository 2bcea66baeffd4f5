/**
 * Which API scopes (lib/contracts/api-scopes.ts) open each tool: one of the listed. tools/list shows
 * a caller only the tools its token opens, and tools/call refuses the others, before core or the
 * runner would. A tool with no rule here is for tokens with every scope only.
 */
import { ALL_API_SCOPES, ApiScope } from "../../../../lib/contracts/api-scopes.js";

const { replsRead, replsWrite, filesRead, filesWrite, exec } = ApiScope;
const reads = [filesRead, filesWrite];

export const toolScopes: Record<string, readonly ApiScope[]> = {
  list_repls: [replsRead],
  list_templates: [replsRead],
  list_github_repositories: [replsRead],
  get_repl_status: [replsRead],
  get_network_policy: [replsRead],
  create_repl: [replsWrite],
  // Files and commands need a running runner: any runner scope may start one (as core's StartRepl).
  start_repl: [replsWrite, filesRead, filesWrite, exec],
  stop_repl: [replsWrite],
  delete_repl: [replsWrite],
  // A template's setup command runs by itself in every repl made from it: running code (core's rule).
  save_template: [exec],
  delete_template: [replsWrite],
  set_network_policy: [replsWrite],
  // As core's CheckpointService: a diff shows file contents, a restore rewrites every file.
  checkpoint: [replsWrite],
  list_checkpoints: [replsRead],
  diff_checkpoints: reads,
  restore_checkpoint: [filesWrite],
  fork_repl: [replsWrite],
  delete_checkpoint: [replsWrite],
  list_files: reads,
  directory_tree: reads,
  read_file: reads,
  read_multiple_files: reads,
  search_files: reads,
  stat_file: reads,
  download_file: reads,
  get_preview_url: reads,
  set_preview_visibility: [replsWrite],
  create_preview_link: [replsWrite],
  list_environment_variables: [replsRead],
  set_environment_variable: [exec],
  delete_environment_variable: [exec],
  write_file: [filesWrite],
  upload_file: [filesWrite],
  edit_file: [filesWrite],
  create_directory: [filesWrite],
  move_file: [filesWrite],
  delete_file: [filesWrite],
  exec: [exec],
  start_process: [exec],
  list_processes: [exec],
  read_process_output: [exec],
  kill_process: [exec],
  create_terminal: [exec],
  send_terminal_input: [exec],
  read_terminal_output: [exec],
  close_terminal: [exec],
};

/** Whether a caller with these scopes may use the tool. */
export function toolAllowed(tool: string, scopes: readonly ApiScope[]): boolean {
  const needed = toolScopes[tool] ?? ALL_API_SCOPES;
  return scopes.length === ALL_API_SCOPES.length || needed.some((s) => scopes.includes(s));
}
