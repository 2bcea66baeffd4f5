/**
 * Refusals of a persist that would delete stored data without evidence that the workspace is really
 * empty. Both change nothing remote and nothing local; callers treat them as "nothing to persist".
 */

/** The workspace directory does not exist (already removed by a stop, or never restored). */
export class WorkspaceMissingError extends Error {
  override name = "WorkspaceMissingError";
  constructor(readonly dir: string) {
    super(`workspace ${dir} does not exist; nothing was persisted`);
  }
}

/**
 * The directory is not the one the manifest describes (replaced, or a volume unmounted under it), or
 * there is no manifest while the stored index lists files: persisting it would delete stored files.
 * A restore writes a fresh manifest and ends the refusal.
 */
export class WorkspaceReplacedError extends Error {
  override name = "WorkspaceReplacedError";
  constructor(
    readonly dir: string,
    readonly reason: "identity-changed" | "no-manifest",
  ) {
    super(
      reason === "identity-changed"
        ? `workspace ${dir} is not the directory that was restored (replaced or unmounted); refusing to persist it over the stored files`
        : `workspace ${dir} has no manifest but the stored workspace has files; refusing to persist it over them (restore first)`,
    );
  }
}

/** No checkpoint of that id is stored under the prefix (never made, or deleted). */
export class CheckpointNotFoundError extends Error {
  override name = "CheckpointNotFoundError";
  constructor(readonly id: string) {
    super(`checkpoint ${JSON.stringify(id)} does not exist`);
  }
}

/** The prefix holds no indexed state to name (nothing was persisted yet). */
export class NothingStoredError extends Error {
  override name = "NothingStoredError";
  constructor(readonly prefix: string) {
    super("nothing has been persisted yet: start the repl once (or persist it) before checkpointing or forking it");
  }
}
