/**
 * Arguments and results the MCP layer adds to a tool beyond its devex.mcp.v1 messages: today only
 * the encoding of file content, which ReadFileResponse and WriteFileRequest cannot carry yet. They
 * belong in proto/devex/mcp/v1/agent_tools.proto; once they are there, this table goes.
 *
 * Each extra field is a string with a fixed set of values. The catalog adds them to the tool's
 * schemas; the server takes them out of the arguments before proto parsing and puts them into the
 * result after proto conversion.
 */
import { type Encoding, encodings } from "./file-content.js";
import type { JsonSchema } from "./json-schema.js";

export interface ExtraField {
  values: readonly string[];
  description: string;
}

export interface ExtraFields {
  input: Record<string, ExtraField>;
  output: Record<string, ExtraField>;
}

/** By the method's local name, as in ToolImpls. */
const table: Record<string, Partial<ExtraFields>> = {
  readFile: {
    output: {
      encoding: {
        values: encodings,
        description:
          'How content is encoded: "utf-8" for text, exactly as in the file; "base64" for a binary file (not UTF-8, or holding NUL bytes), whose bytes are the base64 of content. Pass it to write_file with content to write the same bytes back.',
      },
    },
  },
  writeFile: {
    input: {
      encoding: {
        values: encodings,
        description:
          'How content is encoded: "utf-8" (the default) writes the text as UTF-8; "base64" writes the bytes content encodes, as read_file returns binary files.',
      },
    },
  },
};

/** The typed view of the table, for the implementations. */
export type ExtraInput = { writeFile: { encoding?: Encoding } };
export type ExtraOutput = { readFile: { encoding: Encoding } };

export function extraFieldsOf(localName: string): ExtraFields {
  return { input: {}, output: {}, ...table[localName] };
}

export function extraFieldSchema(field: ExtraField): JsonSchema {
  return { type: "string", enum: [...field.values], description: field.description };
}
