/** The file tools: list, tree, read, write, edit, create directories, move, delete, search and stat in the repl's workspace. */
import { ConnectError } from "@connectrpc/connect";
import { type FileInfo, FileType } from "../../../../gen/devex/runner/v1/file_pb.js";
import { contentBytes } from "./file-content.js";
import { oneOfMany, readResult } from "./file-reads.js";
import { head } from "./output.js";
import { fileEntry } from "./summaries.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type FileTools = Pick<
  ToolImpls,
  | "listFiles"
  | "directoryTree"
  | "readFile"
  | "readMultipleFiles"
  | "writeFile"
  | "editFile"
  | "createDirectory"
  | "moveFile"
  | "deleteFile"
  | "searchFiles"
  | "statFile"
>;

/** What a search and a tree leave out unless asked otherwise. */
const usuallyIgnored = ["node_modules", ".git"];

export function fileTools({ sessions, limits }: ToolContext): FileTools {
  return {
    async listFiles(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const res = await files.listFiles(
        { path: req.path, depth: 1, maxEntries: req.maxEntries || 200, includeHidden: req.includeHidden },
        { signal },
      );
      return { entries: res.entries.map(fileEntry), truncated: res.truncated };
    },
    async directoryTree(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const res = await files.listFiles(
        {
          path: req.path,
          depth: req.depth || 3,
          maxEntries: limits.treeEntries,
          exclude: req.exclude.length ? req.exclude : [...usuallyIgnored],
        },
        { signal },
      );
      return { tree: treeText(req.path, res.entries), truncated: res.truncated };
    },
    async readFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const res = await files.readFile({ path: req.path }, { signal });
      return readResult(req, res, limits.readChars);
    },
    async readMultipleFiles(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const each = Math.max(1_000, Math.floor(limits.readChars / req.paths.length));
      const results = await Promise.all(
        req.paths.map(async (path) => {
          try {
            return oneOfMany(path, await files.readFile({ path }, { signal }), each);
          } catch (e) {
            return { path, error: e instanceof ConnectError ? e.rawMessage : (e as Error).message };
          }
        }),
      );
      return { files: results };
    },
    async writeFile(req, caller, signal) {
      const content = contentBytes(req.content, req.encoding === "base64" ? "base64" : "utf-8");
      const { files } = await sessions.runnerOf(caller, req.replId);
      const { info } = await files.writeFile(
        { path: req.path, content, expectedVersion: req.expectedVersion, createParents: true },
        { signal },
      );
      return { path: info?.path ?? req.path, size: info?.size ?? 0n, version: info?.version ?? "" };
    },
    async editFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const res = await files.editFile(
        {
          path: req.path,
          edits: req.edits.map((e) => ({ oldText: e.oldText, newText: e.newText, replaceAll: e.replaceAll })),
          dryRun: req.dryRun,
        },
        { signal },
      );
      return { diff: head(res.diff, limits.readChars, "diff").text, version: res.info?.version ?? "" };
    },
    async createDirectory(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const { info } = await files.createDirectory({ path: req.path, parents: true }, { signal });
      return { path: info?.path ?? req.path };
    },
    async moveFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const { info } = await files.moveFile({ source: req.source, destination: req.destination }, { signal });
      return { path: info?.path ?? req.destination };
    },
    async deleteFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      await files.deleteFile({ path: req.path, recursive: true }, { signal });
      return { path: req.path };
    },
    async searchFiles(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const res = await files.searchFiles(
        {
          path: req.path,
          glob: req.glob,
          contentPattern: req.pattern,
          regex: req.regex,
          exclude: [...usuallyIgnored],
          maxResults: req.maxResults || 100,
        },
        { signal },
      );
      return {
        paths: res.paths,
        matches: res.matches.map((m) => `${m.path}:${m.line}: ${m.text}`),
        truncated: res.truncated,
      };
    },
    async statFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const { info } = await files.statFile({ path: req.path }, { signal });
      return { entry: fileEntry(info) };
    },
  };
}

/** The entries under `path`, one a line, indented by depth below it, directories ending in "/". */
function treeText(path: string, entries: FileInfo[]): string {
  const base = path.replace(/^\.?\/?|\/$/g, "");
  const lines = entries.map((e) => {
    const rel = base && e.path.startsWith(`${base}/`) ? e.path.slice(base.length + 1) : e.path;
    const depth = rel.split("/").length - 1;
    return `${"  ".repeat(depth)}${e.name}${e.type === FileType.DIRECTORY ? "/" : ""}`;
  });
  return lines.join("\n");
}
