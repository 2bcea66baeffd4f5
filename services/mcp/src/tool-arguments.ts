/**
 * A tool call's arguments → the tool's request message: parsed by proto field name and checked with
 * protovalidate. Faults are said the
 * way the agent wrote the call: an argument it left out is "required", not a length or range rule.
 */
import { type DescMessage, fromJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import { type Path, pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Violation } from "@bufbuild/protovalidate";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { ToolDefinition } from "./tools/catalog.js";

export type Arguments = Record<string, unknown>;

export function createArgumentParser() {
  const validator = createValidator();
  return function parseArguments(tool: ToolDefinition, args: Arguments): Message & Arguments {
    const invalid = (why: string) =>
      new McpError(ErrorCode.InvalidParams, `invalid arguments for ${tool.name}: ${why}`);
    const protoArgs = { ...args };
    let message: Message;
    try {
      message = fromJson(tool.method.input, protoArgs as JsonValue);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    const check = validator.validate(tool.method.input as DescMessage, message);
    if (check.kind === "invalid") {
      // A missing argument breaks each of its rules (length and pattern, say): name it once.
      throw invalid([...new Set(check.violations.map((v) => violationText(v, protoArgs)))].join("; "));
    }
    return message as Message & Arguments;
  };
}

function violationText(v: Violation, args: Arguments): string {
  const name = pathToString(v.field);
  return isAbsent(v.field, args) ? `${name} is required` : `${name}: ${v.message}`;
}

/** Whether the arguments leave out what `path` points at (so its zero value broke the rule). */
function isAbsent(path: Path, args: Arguments): boolean {
  let at: unknown = args;
  for (const step of path) {
    if (step.kind === "oneof") continue;
    const here = at as Record<string | number, unknown>;
    if (step.kind === "field") at = here[step.name] ?? here[step.jsonName];
    else if (step.kind === "list_sub") at = here[step.index];
    else if (step.kind === "map_sub") at = here[String(step.key)];
    else return false;
    if (at === undefined || at === null) return true;
  }
  return false;
}
