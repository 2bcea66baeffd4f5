/**
 * A line typed on a terminal without echo, for a secret's value: the terminal is put in raw mode
 * (the kernel draws nothing) before the prompt is shown, Enter ends the line, Backspace and Ctrl-U
 * edit it, Ctrl-C cancels, and the terminal's mode is restored whatever happens.
 */
import { StringDecoder } from "node:string_decoder";
import { CliError } from "./cli-error.js";

/** The line after some typed input; `end` once Enter (or Ctrl-D) ended it or Ctrl-C cancelled it. */
export interface TypedLine {
  value: string;
  end?: "enter" | "cancel";
}

// Arrow and function keys arrive as escape sequences: dropped whole, not half typed into the value.
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const escapeSequence = /\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|.)?/gs;

/** Applies `input` (raw terminal bytes, decoded) to the line typed so far. */
export function typeInto(value: string, input: string): TypedLine {
  const chars = [...value];
  for (const c of input.replace(escapeSequence, "")) {
    if (c === "\r" || c === "\n" || c === "\x04") return { value: chars.join(""), end: "enter" };
    if (c === "\x03") return { value: "", end: "cancel" };
    if (c === "\x7f" || c === "\b") chars.pop();
    else if (c === "\x15") chars.length = 0;
    else if (c >= " ") chars.push(c);
  }
  return { value: chars.join("") };
}

/** Shows `prompt` on `out` and reads one line from the terminal `stdin` without echoing it. */
export function readHiddenLine(stdin: NodeJS.ReadStream, out: NodeJS.WritableStream, prompt: string): Promise<string> {
  stdin.setRawMode(true);
  out.write(prompt);
  const decoder = new StringDecoder("utf8");
  let value = "";
  return new Promise((resolve, reject) => {
    const finish = (err?: CliError) => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.setRawMode(false);
      stdin.pause();
      out.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      const typed = typeInto(value, decoder.write(chunk));
      value = typed.value;
      if (typed.end === "cancel") finish(new CliError("cancelled: nothing was set", 130));
      else if (typed.end) finish();
    };
    const onEnd = () => finish();
    stdin.on("data", onData);
    stdin.on("end", onEnd);
    stdin.resume();
  });
}
