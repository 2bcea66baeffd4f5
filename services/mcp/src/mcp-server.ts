/**
 * One MCP server per session (or per request in stateless mode), bound to its caller. tools/list
 * serves the catalog derived from the contracts; tools/call parses the arguments into the tool's
 * request message (by proto field name), checks them with protovalidate, runs the implementation
 * and returns the result both as structured content and as JSON text.
 *
 * Errors follow the MCP spec: an unknown tool or arguments that do not fit the schema are protocol
 * errors (InvalidParams); a failure of the tool itself (unknown repl, stopped repl, file changed
 * since read, quota reached, ...) is a result with isError and a message the agent can act on.
 * Either way the text is clean (error-text.ts).
 *
 * While a tool runs it may send progress (when the request carries a progress token) and log
 * messages (at or above the level set with logging/setLevel) on the request's stream
 * (tool-report.ts); the result follows them.
 */
import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  SetLevelRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { DomainError } from "../../../lib/kit/errors.js";
import type { Logger } from "../../../lib/kit/log.js";
import { cleanErrorsSentBy, escapeControls } from "./error-text.js";
import { createArgumentParser } from "./tool-arguments.js";
import { createToolReport, type LogLevelSetting } from "./tool-report.js";
import type { Caller, ToolImpls } from "./tools/agent-tools.js";
import type { ToolDefinition } from "./tools/catalog.js";
import { toolJson } from "./tools/tool-json.js";
import { toolAllowed, toolScopes } from "./tools/tool-scopes.js";

export interface McpServerDeps {
  catalog: ToolDefinition[];
  tools: ToolImpls;
  log: Logger;
  version: string;
}

/** A Server whose protocol errors reach the client with clean messages, over any transport. */
class AgentServer extends Server {
  override connect(transport: Transport): Promise<void> {
    return super.connect(cleanErrorsSentBy(transport));
  }
}

export function createMcpServer(deps: McpServerDeps, caller: Caller): Server {
  const server = new AgentServer(
    { name: "devex", title: "Devex repls", version: deps.version },
    {
      capabilities: { tools: {}, logging: {} },
      instructions:
        "Devex gives you repls: sandboxed workspaces with files, commands, terminals and web previews. " +
        "Find or create a repl (list_repls, create_repl), start it (start_repl), then work in it with the file, " +
        "exec, process and terminal tools. Stop it when done (stop_repl); its files are kept. " +
        "Checkpoint its files before a risky change (checkpoint) to undo it with restore_checkpoint, " +
        "and try alternatives side by side in forks (fork_repl). " +
        "Its network policy (get_network_policy, set_network_policy) decides what it can connect to, " +
        "package registries included.",
    },
  );
  const byName = new Map(deps.catalog.map((t) => [t.name, t]));
  const parseArguments = createArgumentParser();
  // One server per session (or per stdio connection), so the level it holds is that session's.
  const logLevel: LogLevelSetting = { level: undefined };
  server.setRequestHandler(SetLevelRequestSchema, (request) => {
    logLevel.level = request.params.level;
    return {};
  });

  // Only the tools the caller's token may use (tool-scopes.ts).
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: deps.catalog
      .filter((t) => toolAllowed(t.name, caller.scopes))
      .map((t) => ({
        name: t.name,
        title: t.title,
        description: t.description,
        inputSchema: t.inputSchema as { type: "object" },
        outputSchema: t.outputSchema as { type: "object" },
        annotations: t.annotations,
      })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const tool = byName.get(request.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `unknown tool "${request.params.name}"`);
    if (!toolAllowed(tool.name, caller.scopes)) {
      const text = `this API token may not use ${tool.name}: it needs the scope ${toolScopes[tool.name]?.join(" or ") ?? "of a token without scopes"}`;
      return { isError: true, content: [{ type: "text", text }] };
    }
    const input = parseArguments(tool, request.params.arguments ?? {});
    const impl = (deps.tools as unknown as Record<string, (...a: unknown[]) => Promise<object>>)[tool.method.localName];
    const report = createToolReport(extra.sendNotification, request.params._meta?.progressToken, logLevel);
    try {
      const output = (await impl(input, caller, extra.signal, report)) as Record<string, unknown>;
      const json: Record<string, unknown> = toolJson(tool.method.output, create(tool.method.output, output as never));
      return { content: [{ type: "text", text: JSON.stringify(json, null, 2) }], structuredContent: json };
    } catch (e) {
      const text = escapeControls(toolErrorMessage(e, deps.log, tool.name));
      return { isError: true, content: [{ type: "text", text }] };
    } finally {
      await report.settled();
    }
  });

  return server;
}

/** What the agent reads when a tool fails: the domain message, never a backend detail. */
function toolErrorMessage(e: unknown, log: Logger, tool: string): string {
  if (e instanceof DomainError) return e.message;
  if (e instanceof ConnectError) return e.rawMessage;
  log.error({ err: e, tool }, "tool failed");
  return `${tool} failed unexpectedly; try again`;
}
