/**
 * What every agent tool is given: who calls (their API token is forwarded to core, which decides
 * what they may do), the caller's core clients, their runner sessions and the limits on what one
 * tool call returns.
 */

import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { AgentToolsService } from "../../../../gen/devex/mcp/v1/agent_tools_pb.js";
import type { CoreClients } from "../../../../lib/client/clients.js";
import type { RunnerClientsFactory } from "../../../../lib/client/runner-session.js";
import type { ApiScope } from "../../../../lib/contracts/api-scopes.js";
import type { ToolReport } from "../tool-report.js";
import type { CallerSessions } from "./caller-sessions.js";

/** Who is calling: their API token is forwarded to core, which decides what they may do. */
export interface Caller {
  token: string;
  userId: string;
  /** What its token may do (tool-scopes.ts). */
  scopes: ApiScope[];
}

type Methods = typeof AgentToolsService.method;
/** Each tool: its request, who calls, the call's cancellation, and its channel for progress and logs. */
export type ToolImpls = {
  [K in keyof Methods]: (
    req: MessageShape<Methods[K]["input"]>,
    caller: Caller,
    signal: AbortSignal,
    report: ToolReport,
  ) => Promise<MessageInitShape<Methods[K]["output"]>>;
};

/** Limits on what one tool call returns, so that an agent's context is never flooded. */
export const defaultToolLimits = {
  /** Characters of file content one read returns. */
  readChars: 50_000,
  /** Characters of each of stdout and stderr that exec returns. */
  execChars: 16_000,
  /** Characters of terminal output returned. */
  terminalChars: 8_000,
  /** Entries a directory tree shows. */
  treeEntries: 500,
  /** Files a diff of checkpoints lists. */
  diffFiles: 300,
  /** Characters of patches a diff of checkpoints returns. */
  patchChars: 50_000,
  /** How long create_repl waits for a repository's clone (past core's own 10 min default, so core says why first). */
  cloneWaitMs: 11 * 60_000,
};
export type ToolLimits = typeof defaultToolLimits;

export interface AgentToolDeps {
  /** Core clients authenticated as the caller. */
  core(caller: Caller): CoreClients;
  /** Runner clients for a runner URL with a runner token (read at each call). */
  runner: RunnerClientsFactory;
  /** Limits on what one tool call returns. */
  limits?: Partial<ToolLimits>;
  now?: () => number;
}

export interface ToolContext {
  core(caller: Caller): CoreClients;
  sessions: CallerSessions;
  limits: ToolLimits;
}
