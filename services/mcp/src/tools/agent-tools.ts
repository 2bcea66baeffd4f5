/**
 * The implementations of the agent tools (devex.mcp.v1.AgentToolsService). Each one is a thin
 * mapping onto core and runner calls through the shared client layer (lib/client), made with the
 * caller's own API token, so the caller sees exactly what core and the runner allow them to.
 */
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Repl, ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { AgentToolsService, ReadFileRequest } from "../../../../gen/devex/mcp/v1/agent_tools_pb.js";
import {
  type FileInfo,
  FileType,
  type ReadFileResponse as RunnerReadFileResponse,
} from "../../../../gen/devex/runner/v1/file_pb.js";
import type { Process } from "../../../../gen/devex/runner/v1/process_pb.js";
import type { Terminal } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import type { CoreClients, RunnerClients } from "../../../../lib/client/clients.js";
import {
  type RunnerClientsFactory,
  type RunnerSession,
  startRunnerSession,
} from "../../../../lib/client/runner-session.js";
import { failedPrecondition, notFound } from "../../../../lib/kit/errors.js";
import { asText, contentBytes, linesOf, toBase64 } from "./file-content.js";
import { head, plainText, tail } from "./output.js";

/** Who is calling: their API token is forwarded to core, which decides what they may do. */
export interface Caller {
  token: string;
  userId: string;
}

type Methods = typeof AgentToolsService.method;
export type ToolImpls = {
  [K in keyof Methods]: (
    req: MessageShape<Methods[K]["input"]>,
    caller: Caller,
    signal: AbortSignal,
  ) => Promise<MessageInitShape<Methods[K]["output"]>>;
};

export interface AgentToolDeps {
  /** Core clients authenticated as the caller. */
  core(caller: Caller): CoreClients;
  /** Runner clients for a runner URL with a runner token (read at each call). */
  runner: RunnerClientsFactory;
  /** Limits on what one tool call returns. */
  limits?: Partial<typeof defaultLimits>;
  now?: () => number;
}

export const defaultLimits = {
  /** Characters of file content one read returns. */
  readChars: 50_000,
  /** Characters of each of stdout and stderr that exec returns. */
  execChars: 16_000,
  /** Characters of terminal output returned. */
  terminalChars: 8_000,
  /** Entries a directory tree shows. */
  treeEntries: 500,
};

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

function replSummary(r: Repl | undefined) {
  return {
    replId: r?.replId ?? "",
    name: r?.name ?? "",
    template: r?.template ?? "",
    status: statusNames[r?.status ?? ReplStatus.UNSPECIFIED],
    createTime: r?.createTime ? timestampDate(r.createTime).toISOString() : "",
  };
}

function fileEntry(f: FileInfo | undefined) {
  return {
    path: f?.path ?? "",
    type: typeNames[f?.type ?? FileType.UNSPECIFIED],
    size: f?.size ?? 0n,
    mode: (f?.mode ?? 0).toString(8).padStart(4, "0"),
    modifyTime: f?.modifyTime ? timestampDate(f.modifyTime).toISOString() : "",
    version: f?.version ?? "",
  };
}

function processSummary(p: Process | undefined) {
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

function terminalSummary(t: Terminal | undefined) {
  return { terminalId: t?.terminalId ?? "", name: t?.name ?? "", exited: t?.exited ?? false };
}

const utf8 = new TextEncoder();

export function createAgentTools(deps: AgentToolDeps): ToolImpls {
  const limits = { ...defaultLimits, ...deps.limits };
  const now = deps.now ?? Date.now;
  /** Runner sessions by caller and repl. */
  const sessions = new Map<string, RunnerSession>();
  const sessionKey = (caller: Caller, replId: string) => `${caller.userId}/${replId}`;

  /** A repl id the caller does not have: say which ones they do have. */
  async function unknownRepl(caller: Caller, replId: string): Promise<never> {
    const { repls } = await deps.core(caller).repls.listRepls({});
    const ids = repls.map((r) => r.replId);
    throw notFound(
      `repl "${replId}" not found. ${ids.length ? `Your repls: ${ids.join(", ")}.` : "You have no repls: create one with create_repl."}`,
    );
  }

  async function getRepl(caller: Caller, replId: string): Promise<Repl> {
    try {
      const { repl } = await deps.core(caller).repls.getRepl({ replId });
      return repl!;
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.NotFound) return unknownRepl(caller, replId);
      throw e;
    }
  }

  /**
   * The caller's session on the repl's runner, renewed (as the caller) when its token is about to
   * expire; the repl must be running (tools never start a repl by surprise).
   */
  async function sessionOf(caller: Caller, replId: string): Promise<RunnerSession> {
    const cached = sessions.get(sessionKey(caller, replId));
    if (cached && !cached.needsRefresh()) return cached;
    const repl = await getRepl(caller, replId);
    if (repl.status !== ReplStatus.RUNNING) {
      throw failedPrecondition(`repl "${replId}" is ${statusNames[repl.status]}: call start_repl first`);
    }
    return (await startSession(caller, replId)).session;
  }

  /** StartRepl as the caller; the runner it returns becomes the caller's session for the repl. */
  async function startSession(caller: Caller, replId: string) {
    const started = await startRunnerSession({ core: deps.core(caller), replId, runnerClients: deps.runner, now });
    sessions.set(sessionKey(caller, replId), started.session);
    return started;
  }

  /** Clients for the repl's runner (see sessionOf). */
  async function runnerOf(caller: Caller, replId: string): Promise<RunnerClients> {
    return (await sessionOf(caller, replId)).clients;
  }

  /** A text file's requested lines, exactly: each line keeps its own terminator. */
  function textRead(req: ReadFileRequest, text: string) {
    const all = linesOf(text);
    let lines = all;
    if (req.startLine || req.endLine) lines = all.slice(Math.max(0, req.startLine - 1), req.endLine || undefined);
    else if (req.head) lines = all.slice(0, req.head);
    else if (req.tail) lines = all.slice(-req.tail);
    const seeMore = "read a line range (start_line/end_line) to see more";
    return {
      content: lines.join(""),
      encoding: "utf-8",
      totalLines: all.length,
      max: limits.readChars,
      seeMore,
    } as const;
  }

  /** A binary file, whole, as base64; a cut at a multiple of 4 characters still decodes to its first bytes. */
  function binaryRead(req: ReadFileRequest, res: RunnerReadFileResponse) {
    if (req.head || req.tail || req.startLine || req.endLine) {
      throw failedPrecondition(
        `${req.path} is a binary file (${res.info?.size} bytes): read it without head, tail or a line range to get it as base64`,
      );
    }
    const max = limits.readChars - (limits.readChars % 4);
    return {
      content: toBase64(res.content),
      encoding: "base64",
      totalLines: 0,
      max,
      seeMore: "not the whole file",
    } as const;
  }

  return {
    async listRepls(_req, caller) {
      const { repls } = await deps.core(caller).repls.listRepls({});
      return { repls: repls.map(replSummary) };
    },
    async listTemplates(_req, caller) {
      const { templates } = await deps.core(caller).repls.listTemplates({});
      return {
        templates: templates.map((t) => ({ name: t.name, description: t.description, runCommand: t.runCommand })),
      };
    },
    async createRepl(req, caller) {
      const { repl } = await deps.core(caller).repls.createRepl({ name: req.name, template: req.template });
      return { repl: replSummary(repl) };
    },
    async startRepl(req, caller) {
      await getRepl(caller, req.replId);
      const { repl } = await startSession(caller, req.replId);
      return { repl: replSummary(repl) };
    },
    async stopRepl(req, caller) {
      await getRepl(caller, req.replId);
      sessions.delete(sessionKey(caller, req.replId));
      const { repl } = await deps.core(caller).repls.stopRepl({ replId: req.replId });
      return { repl: replSummary(repl) };
    },
    async deleteRepl(req, caller) {
      await getRepl(caller, req.replId);
      sessions.delete(sessionKey(caller, req.replId));
      await deps.core(caller).repls.deleteRepl({ replId: req.replId });
      return { replId: req.replId };
    },
    async getReplStatus(req, caller, signal) {
      const repl = await getRepl(caller, req.replId);
      if (repl.status !== ReplStatus.RUNNING) return { repl: replSummary(repl) };
      const runner = await runnerOf(caller, req.replId);
      const [{ terminals }, { processes }] = await Promise.all([
        runner.terminals.listTerminals({}, { signal }),
        runner.processes.listProcesses({}, { signal }),
      ]);
      return {
        repl: replSummary(repl),
        terminals: terminals.map(terminalSummary),
        processes: processes.map(processSummary),
      };
    },
    async listFiles(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const res = await files.listFiles(
        { path: req.path, depth: 1, maxEntries: req.maxEntries || 200, includeHidden: req.includeHidden },
        { signal },
      );
      return { entries: res.entries.map(fileEntry), truncated: res.truncated };
    },
    async directoryTree(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const res = await files.listFiles(
        {
          path: req.path,
          depth: req.depth || 3,
          maxEntries: limits.treeEntries,
          exclude: req.exclude.length ? req.exclude : ["node_modules", ".git"],
        },
        { signal },
      );
      const base = req.path.replace(/^\.?\/?|\/$/g, "");
      const lines = res.entries.map((e) => {
        const rel = base && e.path.startsWith(`${base}/`) ? e.path.slice(base.length + 1) : e.path;
        const depth = rel.split("/").length - 1;
        return `${"  ".repeat(depth)}${e.name}${e.type === FileType.DIRECTORY ? "/" : ""}`;
      });
      return { tree: lines.join("\n"), truncated: res.truncated };
    },
    async readFile(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const res = await files.readFile({ path: req.path }, { signal });
      const text = asText(res.content);
      const read = text === undefined ? binaryRead(req, res) : textRead(req, text);
      const cut = head(read.content, read.max, "content");
      const partial = [cut.note, res.truncated ? "the file is larger than the runner's read limit" : ""].filter(
        Boolean,
      );
      // A cut read has no version: written back with one, it would replace the file by its first part.
      const whole = partial.length === 0;
      return {
        content: cut.text,
        encoding: read.encoding,
        totalLines: read.totalLines,
        version: whole ? (res.info?.version ?? "") : "",
        note: whole
          ? ""
          : `${partial.join("; ")}: ${read.seeMore}. This is not the whole file, so no version is given: writing it back would cut the file`,
      };
    },
    async readMultipleFiles(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const each = Math.max(1_000, Math.floor(limits.readChars / req.paths.length));
      const results = await Promise.all(
        req.paths.map(async (path) => {
          try {
            const res = await files.readFile({ path }, { signal });
            const text = asText(res.content);
            if (text === undefined) return { path, error: `a binary file (${res.info?.size} bytes): use read_file` };
            const cut = head(text, each, "content");
            return { path, content: cut.note ? `${cut.text}\n[${cut.note}]` : cut.text };
          } catch (e) {
            return { path, error: e instanceof ConnectError ? e.rawMessage : (e as Error).message };
          }
        }),
      );
      return { files: results };
    },
    async writeFile(req, caller, signal) {
      const content = contentBytes(req.content, req.encoding === "base64" ? "base64" : "utf-8");
      const { files } = await runnerOf(caller, req.replId);
      const { info } = await files.writeFile(
        { path: req.path, content, expectedVersion: req.expectedVersion, createParents: true },
        { signal },
      );
      return { path: info?.path ?? req.path, size: info?.size ?? 0n, version: info?.version ?? "" };
    },
    async editFile(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
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
      const { files } = await runnerOf(caller, req.replId);
      const { info } = await files.createDirectory({ path: req.path, parents: true }, { signal });
      return { path: info?.path ?? req.path };
    },
    async moveFile(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const { info } = await files.moveFile({ source: req.source, destination: req.destination }, { signal });
      return { path: info?.path ?? req.destination };
    },
    async deleteFile(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      await files.deleteFile({ path: req.path, recursive: true }, { signal });
      return { path: req.path };
    },
    async searchFiles(req, caller, signal) {
      const { files } = await runnerOf(caller, req.replId);
      const res = await files.searchFiles(
        {
          path: req.path,
          glob: req.glob,
          contentPattern: req.pattern,
          regex: req.regex,
          exclude: ["node_modules", ".git"],
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
      const { files } = await runnerOf(caller, req.replId);
      const { info } = await files.statFile({ path: req.path }, { signal });
      return { entry: fileEntry(info) };
    },
    async exec(req, caller, signal) {
      const { processes } = await runnerOf(caller, req.replId);
      const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() };
      let stdout = "";
      let stderr = "";
      let total = { stdout: 0, stderr: 0 };
      let exit: { exitCode: number; signal: string; timedOut: boolean } | undefined;
      const stream = processes.exec(
        {
          command: { shell: req.command, cwd: req.cwd, env: req.env },
          timeout: { seconds: BigInt(req.timeoutSeconds || 120) },
        },
        { signal },
      );
      for await (const ev of stream) {
        // Keep a bounded window while streaming; the final cut below reports how much was dropped.
        if (ev.event.case === "stdout") {
          const text = decoder.stdout.decode(ev.event.value, { stream: true });
          total = { ...total, stdout: total.stdout + text.length };
          stdout = keepTail(stdout + text, limits.execChars);
        } else if (ev.event.case === "stderr") {
          const text = decoder.stderr.decode(ev.event.value, { stream: true });
          total = { ...total, stderr: total.stderr + text.length };
          stderr = keepTail(stderr + text, limits.execChars);
        } else if (ev.event.case === "exit") exit = ev.event.value;
      }
      const out = tail(stdout, limits.execChars, "stdout", total.stdout);
      const err = tail(stderr, limits.execChars, "stderr", total.stderr);
      return {
        exitCode: exit?.signal ? -1 : (exit?.exitCode ?? -1),
        signal: exit?.signal ?? "",
        timedOut: exit?.timedOut ?? false,
        stdout: out.text,
        stderr: err.text,
        note: [out.note, err.note].filter(Boolean).join("; "),
      };
    },
    async startProcess(req, caller, signal) {
      const { processes } = await runnerOf(caller, req.replId);
      const { process } = await processes.startProcess(
        { command: { shell: req.command, cwd: req.cwd }, name: req.name },
        { signal },
      );
      return { process: processSummary(process) };
    },
    async listProcesses(req, caller, signal) {
      const { processes } = await runnerOf(caller, req.replId);
      const res = await processes.listProcesses({}, { signal });
      return { processes: res.processes.map(processSummary) };
    },
    async readProcessOutput(req, caller, signal) {
      const { processes } = await runnerOf(caller, req.replId);
      const max = req.maxBytes || 16_384;
      const res = await processes.readProcessOutput(
        { processId: req.processId, maxBytes: max, tail: true },
        { signal },
      );
      const before = res.offset;
      return {
        output: new TextDecoder().decode(res.data),
        process: processSummary(res.process),
        note: before > 0n ? `showing the last ${res.data.length} bytes; ${before} earlier bytes not shown` : "",
      };
    },
    async killProcess(req, caller, signal) {
      const { processes } = await runnerOf(caller, req.replId);
      const { process } = await processes.killProcess({ processId: req.processId }, { signal });
      return { process: processSummary(process) };
    },
    async createTerminal(req, caller, signal) {
      const { terminals } = await runnerOf(caller, req.replId);
      const { terminal } = await terminals.createTerminal({ cwd: req.cwd, size: { cols: 120, rows: 40 } }, { signal });
      return { terminal: terminalSummary(terminal) };
    },
    async sendTerminalInput(req, caller, signal) {
      const { terminals } = await runnerOf(caller, req.replId);
      const before = await terminals.readScrollback({ terminalId: req.terminalId, maxBytes: 1 }, { signal });
      await terminals.sendInput({ terminalId: req.terminalId, data: utf8.encode(req.input) }, { signal });
      await new Promise((resolve) => setTimeout(resolve, req.waitMs || 500));
      const after = await terminals.readScrollback({ terminalId: req.terminalId }, { signal });
      const fresh = Number(after.totalBytes - before.totalBytes);
      const bytes = after.data.subarray(Math.max(0, after.data.length - fresh));
      return { output: tail(plainText(new TextDecoder().decode(bytes)), limits.terminalChars).text };
    },
    async readTerminalOutput(req, caller, signal) {
      const { terminals } = await runnerOf(caller, req.replId);
      const max = req.maxChars || limits.terminalChars;
      const res = await terminals.readScrollback({ terminalId: req.terminalId, maxBytes: max * 4 }, { signal });
      return {
        output: tail(plainText(new TextDecoder().decode(res.data)), max).text,
        terminal: terminalSummary(res.terminal),
      };
    },
    async closeTerminal(req, caller, signal) {
      const { terminals } = await runnerOf(caller, req.replId);
      await terminals.closeTerminal({ terminalId: req.terminalId }, { signal });
      return { terminalId: req.terminalId };
    },
    async getPreviewUrl(req, caller) {
      const session = await sessionOf(caller, req.replId);
      return { url: session.previewUrl(req.port) };
    },
  };
}

/** Bounds a streaming buffer to what tail() can return; the caller counts what falls off. */
function keepTail(text: string, max: number): string {
  return text.length > 2 * max ? text.slice(-max) : text;
}
