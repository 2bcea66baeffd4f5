/**
 * The implementations of the agent tools (devex.mcp.v1.AgentToolsService). Each one is a thin
 * mapping onto core and runner calls through the shared client layer (lib/client), made with the
 * caller's own API token, so the caller sees exactly what core and the runner allow them to.
 * The tools live by area: repl-tools.ts, checkpoint-tools.ts, network-tools.ts, file-tools.ts, transfer-tools.ts,
 * process-tools.ts, terminal-tools.ts, preview-tools.ts and environment-tools.ts; what they share is in
 * tool-context.ts and caller-sessions.ts.
 */
import { CallerSessions } from "./caller-sessions.js";
import { checkpointTools } from "./checkpoint-tools.js";
import { environmentTools } from "./environment-tools.js";
import { fileTools } from "./file-tools.js";
import { networkTools } from "./network-tools.js";
import { previewTools } from "./preview-tools.js";
import { processTools } from "./process-tools.js";
import { replTools } from "./repl-tools.js";
import { terminalTools } from "./terminal-tools.js";
import {
  type AgentToolDeps,
  type Caller,
  defaultToolLimits,
  type ToolContext,
  type ToolImpls,
} from "./tool-context.js";
import { transferTools } from "./transfer-tools.js";

export type { AgentToolDeps, Caller, ToolImpls } from "./tool-context.js";

export function createAgentTools(deps: AgentToolDeps): ToolImpls {
  const core = (caller: Caller) => deps.core(caller);
  const ctx: ToolContext = {
    core,
    sessions: new CallerSessions({ core, runner: deps.runner, now: deps.now ?? Date.now }),
    limits: { ...defaultToolLimits, ...deps.limits },
  };
  return {
    ...replTools(ctx),
    ...checkpointTools(ctx),
    ...networkTools(ctx),
    ...fileTools(ctx),
    ...transferTools(ctx),
    ...processTools(ctx),
    ...terminalTools(ctx),
    ...previewTools(ctx),
    ...environmentTools(ctx),
  };
}
