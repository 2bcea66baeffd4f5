/** What FileService's handlers share: their dependencies and how a path is resolved. */
import type { TransferTickets } from "../../transfer/tickets.js";
import type { AtOptions, Workspace } from "../../workspace/paths.js";

export interface TransferLimits {
  /** Largest file UploadFile takes, and largest total of an archive's files (DEVEX_RUNNER_MAX_UPLOAD). */
  maxUploadBytes: number;
  /** Most entries an archive may hold, either way (DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES). */
  maxArchiveEntries: number;
}

export interface FileServiceDeps {
  workspace: Workspace;
  maxFileRead: number;
  transfer: TransferLimits;
  tickets: TransferTickets;
}

/** What a path names: reads follow a final symlink (confined); entry operations act on the link itself. */
export const TARGET: AtOptions = { follow: "all" };
export const ENTRY: AtOptions = { follow: "parents" };
