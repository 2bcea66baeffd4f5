/**
 * The MCP tool catalog, derived from the devex.mcp.v1.AgentToolsService descriptors: one tool per
 * RPC, named in snake_case, described by the RPC's doc comment, with input and output JSON Schemas
 * from its request and response messages and annotations from its (devex.mcp.v1.tool) option. The
 * contract is written once, in proto/devex/mcp/v1/agent_tools.proto.
 */
import { type DescMethod, type FileRegistry, getOption } from "@bufbuild/protobuf";
import { AgentToolsService } from "../../../../gen/devex/mcp/v1/agent_tools_pb.js";
import { tool as toolOption } from "../../../../gen/devex/mcp/v1/options_pb.js";
import { docOf } from "../../../../lib/contracts/registry.js";
import { type JsonSchema, messageSchema } from "./json-schema.js";

export interface ToolAnnotations {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolDefinition {
  /** snake_case name, such as "read_file". */
  name: string;
  title: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  annotations: ToolAnnotations;
  /** The generated method (with codecs) that implements the tool. */
  method: DescMethod;
}

export function snakeCase(name: string): string {
  // GitHub is one word to agents: list_github_repositories, not list_git_hub_repositories.
  return name
    .replace(/GitHub/g, "Github")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

/** Builds the catalog; `registry` is the descriptor set with comments (lib/contracts loadContracts). */
export function buildToolCatalog(registry: FileRegistry): ToolDefinition[] {
  const documented = registry.getService(AgentToolsService.typeName);
  if (!documented) throw new Error(`${AgentToolsService.typeName} is missing from the descriptor set`);
  return AgentToolsService.methods.map((method) => {
    const withDocs = documented.methods.find((m) => m.name === method.name);
    if (!withDocs) throw new Error(`${method.name} is missing from the descriptor set: run npm run generate`);
    const options = getOption(method, toolOption);
    const description = docOf(withDocs);
    return {
      name: snakeCase(method.name),
      title: options.title || method.name,
      description,
      inputSchema: messageSchema(withDocs.input),
      outputSchema: messageSchema(withDocs.output),
      annotations: {
        title: options.title || method.name,
        readOnlyHint: options.readOnly,
        destructiveHint: options.destructive,
        idempotentHint: options.idempotent,
        openWorldHint: options.openWorld,
      },
      method,
    };
  });
}
