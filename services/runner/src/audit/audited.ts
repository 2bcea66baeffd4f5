/**
 * Which of the runner's calls go into the audit log, and what each says. Terminals created and
 * closed, commands run (Exec, StartProcess) and processes killed are recorded whoever made them;
 * FileService's changing methods (every method but the NO_SIDE_EFFECTS ones and the watch) only when
 * made with an API token's runner token (its `tid` is an API token id): the browser IDE saves files
 * as the user types, and recording those would drown the log, while an agent's or a script's writes
 * are what the issue asks to see. A command is named by its program only (argv[0]'s base name, or
 * "bash -c" for a command line): arguments and command lines may hold secrets. Request bodies (file
 * contents, input, environments) never get in.
 */
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { FileService } from "../../../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../../../gen/devex/runner/v1/process_pb.js";
import { TerminalService } from "../../../../gen/devex/runner/v1/terminal_pb.js";
import { SESSION_TOKEN_ID } from "../../../../lib/contracts/audit.js";
import { fieldOf as field, fieldsOf } from "../../../../lib/kit/call-outcome.js";

type Fields = Record<string, unknown>;
type Describe = (req: Fields, res: Fields | undefined) => Record<string, unknown>;

/** A command's program name: argv[0] without its directory, or "bash -c" for a shell command line. */
export function programOf(command: unknown): string | undefined {
  const argv = field(command, "argv");
  if (Array.isArray(argv) && typeof argv[0] === "string") return argv[0].split("/").at(-1)?.slice(0, 128) || undefined;
  if (field(command, "shell")) return "bash -c";
  return undefined;
}

const rpc = (service: { typeName: string }, method: string) => `${service.typeName}/${method}`;

/** The calls recorded whatever the credential, with what they say. */
const always: Record<string, Describe> = {
  [rpc(TerminalService, "CreateTerminal")]: (req, res) => ({
    terminal_id: field(res?.terminal, "terminalId"),
    program: Array.isArray(req.command) && req.command.length ? programOf({ argv: req.command }) : "shell",
  }),
  [rpc(TerminalService, "CloseTerminal")]: (req) => ({ terminal_id: req.terminalId }),
  [rpc(ProcessService, "Exec")]: (req) => ({ program: programOf(req.command) }),
  [rpc(ProcessService, "StartProcess")]: (req, res) => ({
    program: programOf(req.command),
    process_id: field(res?.process, "processId"),
  }),
  [rpc(ProcessService, "KillProcess")]: (req) => ({ process_id: req.processId, signal: req.signal || "SIGTERM" }),
};

/** FileService's changing methods: recorded for API tokens only, by the path they change. */
const fileChanges = new Set(
  FileService.methods
    .filter((m) => m.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS && !m.name.startsWith("Watch"))
    .map((m) => rpc(FileService, m.name)),
);

/** A client stream's first message is its header (UploadFile, UploadArchive): the path is there. */
const describeFileChange: Describe = (req) =>
  req.source !== undefined
    ? { path: req.source, destination: req.destination }
    : { path: req.path ?? field(field(req.part, "value"), "path") };

export interface Audited {
  /** A file change (coalesced by path in the reporter). */
  fileChange: boolean;
  describe: Describe;
}

/** Whether a call by this credential is recorded, and how it is described. */
export function audited(rpcName: string, tokenId: string | undefined): Audited | undefined {
  if (always[rpcName]) return { fileChange: false, describe: always[rpcName] };
  if (fileChanges.has(rpcName) && isApiToken(tokenId)) return { fileChange: true, describe: describeFileChange };
  return undefined;
}

/** A runner token made for an API token (not a browser session, nor one from before token ids). */
export const isApiToken = (tokenId: string | undefined) => !!tokenId && tokenId !== SESSION_TOKEN_ID;

/** The description as strings, empty values left out, each value bounded. */
export function detailsOf(d: Audited, req: unknown, res: unknown): Record<string, string> {
  const request = fieldsOf(req);
  const response = res && typeof res === "object" ? fieldsOf(res) : undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.describe(request, response)))
    if (typeof v === "string" && v) out[k] = v.slice(0, 1024);
  return out;
}
