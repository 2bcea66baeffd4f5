/** What FileService's handlers share: their dependencies and how a path is resolved. */
import type { AtOptions, Workspace } from "../../workspace/paths.js";

export interface FileServiceDeps {
  workspace: Workspace;
  maxFileRead: number;
}

/** What a path names: reads follow a final symlink (confined); entry operations act on the link itself. */
export const TARGET: AtOptions = { follow: "all" };
export const ENTRY: AtOptions = { follow: "parents" };
