/** How repls, files, processes and terminals look in tool results: plain names, strings and numbers. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type GitHubRepository,
  type GitOrigin,
  type Repl,
  ReplStatus,
  type Setup,
  SetupStatus,
  type Template,
} from "../../../../gen/devex/core/v1/repl_pb.js";
import { type FileInfo, FileType } from "../../../../gen/devex/runner/v1/file_pb.js";
import type { Process } from "../../../../gen/devex/runner/v1/process_pb.js";
import type { Terminal } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { cloneStatusName } from "./clone-progress.js";
import { networkPolicy } from "./network-tools.js";

const statusNames: Record<ReplStatus, string> = {
  [ReplStatus.UNSPECIFIED]: "unknown",
  [ReplStatus.STOPPED]: "stopped",
  [ReplStatus.STARTING]: "starting",
  [ReplStatus.RUNNING]: "running",
  [ReplStatus.STOPPING]: "stopping",
  [ReplStatus.DELETING]: "deleting",
};

const typeNames: Record<FileType, string> = {
  [FileType.UNSPECIFIED]: "other",
  [FileType.FILE]: "file",
  [FileType.DIRECTORY]: "directory",
  [FileType.SYMLINK]: "symlink",
  [FileType.OTHER]: "other",
};

export const statusName = (s: ReplStatus) => statusNames[s];

const setupStatusNames: Record<SetupStatus, string> = {
  [SetupStatus.UNSPECIFIED]: "",
  [SetupStatus.PENDING]: "pending",
  [SetupStatus.RUNNING]: "running",
  [SetupStatus.SUCCEEDED]: "succeeded",
  [SetupStatus.FAILED]: "failed",
};

/** A repl's setup as agents see it; undefined (left out) when its template has no setup command. */
function setupSummary(s: Setup | undefined) {
  if (!s?.command) return undefined;
  return { command: s.command, status: setupStatusNames[s.status], exitCode: s.exitCode, message: s.message };
}

/** A template as agents see it: whose it is as "operator" or "you" (the caller's private one). */
export function templateSummary(t: Template | undefined) {
  return {
    name: t?.name ?? "",
    title: t?.title ?? "",
    description: t?.description ?? "",
    runCommand: t?.runCommand ?? "",
    setupCommand: t?.setupCommand ?? "",
    previewPort: t?.previewPort ?? 0,
    owner: t?.owner ? "you" : "operator",
  };
}

export function replSummary(r: Repl | undefined) {
  return {
    replId: r?.replId ?? "",
    name: r?.name ?? "",
    template: r?.template ?? "",
    status: statusNames[r?.status ?? ReplStatus.UNSPECIFIED],
    createTime: r?.createTime ? timestampDate(r.createTime).toISOString() : "",
    networkMode: networkPolicy(r).mode,
    runCommand: r?.runCommand ?? "",
    previewPort: r?.previewPort ?? 0,
    setup: setupSummary(r?.setup),
    git: gitSummary(r?.git),
  };
}

/**
 * Where the repl's repository came from, its clone and how its git reaches the repository (the
 * owner's GitHub grant, pushing allowed); undefined (left out) for a repl made from a template's files.
 */
function gitSummary(g: GitOrigin | undefined) {
  if (!g?.source) return undefined;
  return {
    url: g.source.url,
    ref: g.source.ref,
    status: cloneStatusName(g.status),
    commit: g.commit,
    githubGrant: g.githubGrant,
    allowPush: g.source.allowPush,
  };
}

/** A GitHub repository as agents see it: its clone_url is what create_repl takes. */
export function gitHubRepositorySummary(r: GitHubRepository) {
  return {
    fullName: r.fullName,
    cloneUrl: r.cloneUrl,
    private: r.private,
    defaultBranch: r.defaultBranch,
    description: r.description,
    pushTime: r.pushTime ? timestampDate(r.pushTime).toISOString() : "",
  };
}

export function fileEntry(f: FileInfo | undefined) {
  return {
    path: f?.path ?? "",
    type: typeNames[f?.type ?? FileType.UNSPECIFIED],
    size: f?.size ?? 0n,
    mode: (f?.mode ?? 0).toString(8).padStart(4, "0"),
    modifyTime: f?.modifyTime ? timestampDate(f.modifyTime).toISOString() : "",
    version: f?.version ?? "",
  };
}

export function processSummary(p: Process | undefined) {
  const c = p?.command;
  return {
    processId: p?.processId ?? "",
    name: p?.name ?? "",
    command: c?.shell || c?.argv.join(" ") || "",
    running: p?.running ?? false,
    exitCode: p?.exit?.exitCode ?? 0,
    signal: p?.exit?.signal ?? "",
  };
}

export function terminalSummary(t: Terminal | undefined) {
  return { terminalId: t?.terminalId ?? "", name: t?.name ?? "", exited: t?.exited ?? false };
}
