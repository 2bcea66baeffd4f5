/**
 * How core's warm pool (services/core/src/driver/local/pool.ts) and a pooled runner process
 * (services/runner/src/pooled.ts) talk, written once: the process's command line and the messages
 * on the IPC channel of the fork.
 *   runner → core  {type:"ready"}                 modules loaded and warmed up, waiting
 *   core → runner  {type:"assign", env:{DEVEX_*}} the runner's configuration (services/runner/src/config.ts)
 *   runner → core  {type:"started", port} | {type:"failed", message}
 */

/** Core's message: the runner's configuration, as the environment a standalone runner reads. */
export type PoolToRunner = { type: "assign"; env: Record<string, string> };

/** The runner's messages. */
export type RunnerToPool = { type: "ready" } | { type: "started"; port: number } | { type: "failed"; message: string };

/** The marker in a pooled runner's command line, followed by its process id: checked before core signals a pid from a record. */
export const pooledRunnerMarker = "--devex-runner";

/**
 * The arguments after the entry file: the marker, the process id and a scratch folder for the
 * warm-up (its private /tmp in the sandbox, else its own folder, which the pool removes).
 */
export function pooledRunnerArgs(procId: string, scratch: string): string[] {
  return [pooledRunnerMarker, procId, scratch];
}

/** The scratch folder from a pooled runner's `process.argv` (node, entry file, then pooledRunnerArgs). */
export function pooledRunnerScratch(argv: string[]): string | undefined {
  const i = argv.indexOf(pooledRunnerMarker);
  return i >= 0 ? argv[i + 2] : undefined;
}
