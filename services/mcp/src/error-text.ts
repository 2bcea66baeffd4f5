/**
 * Error text as an agent reads it. Two things go wrong on the way out otherwise: the SDK's McpError
 * writes "MCP error <code>: " into its message, which goes on the wire, and the client's McpError
 * puts the same prefix in front again; and messages echo what the caller sent (a path with a NUL,
 * an escape sequence), which would reach the agent raw.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { isJSONRPCErrorResponse } from "@modelcontextprotocol/sdk/types.js";

// C0 controls but newline and tab, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** Control characters written as \u0000 escapes, so they can neither hide nor forge text. */
export function escapeControls(text: string): string {
  return text.replace(controls, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const mcpErrorPrefix = /^(MCP error -?\d+: )+/;

/** Makes every JSON-RPC error `transport` sends carry a clean message: no prefix (the client adds it), controls escaped. */
export function cleanErrorsSentBy<T extends Transport>(transport: T): T {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (!isJSONRPCErrorResponse(message)) return send(message, options);
    const text = escapeControls(message.error.message.replace(mcpErrorPrefix, ""));
    return send({ ...message, error: { ...message.error, message: text } }, options);
  };
  return transport;
}
