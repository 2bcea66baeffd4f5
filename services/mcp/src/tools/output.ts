/** Keeping tool output bounded, so that an agent's context is never flooded. */

/** The last `max` characters of `text`, and a note saying how much was cut (empty if nothing was). */
export function tail(text: string, max: number, what = "output", total = text.length): { text: string; note: string } {
  if (total <= max) return { text, note: "" };
  let start = text.length - max;
  if (isLowSurrogate(text.charCodeAt(start))) start++; // never half a character
  return { text: text.slice(start), note: `${what}: the first ${total - max} of ${total} characters were cut` };
}

/** The first `max` characters of `text`, and a note saying how much was cut. */
export function head(text: string, max: number, what = "output"): { text: string; note: string } {
  if (text.length <= max) return { text, note: "" };
  const end = isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max; // never half a character
  return { text: text.slice(0, end), note: `${what}: cut after ${end} of ${text.length} characters` };
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

// CSI, OSC and two-character escape sequences, as terminals emit them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal control characters is the point.
const ansi = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

/** Terminal output as plain text: escape sequences removed, carriage returns before newlines dropped. */
export function plainText(terminalOutput: string): string {
  return terminalOutput.replace(ansi, "").replace(/\r+\n/g, "\n").replace(/\r/g, "\n");
}
