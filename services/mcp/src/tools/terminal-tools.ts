/** The terminal tools: open a terminal in the repl, type into it, read what it shows, close it. */
import { plainText, tail } from "./output.js";
import { terminalSummary } from "./summaries.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type TerminalTools = Pick<ToolImpls, "createTerminal" | "sendTerminalInput" | "readTerminalOutput" | "closeTerminal">;

const utf8 = new TextEncoder();

export function terminalTools({ sessions, limits }: ToolContext): TerminalTools {
  return {
    async createTerminal(req, caller, signal) {
      const { terminals } = await sessions.runnerOf(caller, req.replId);
      const { terminal } = await terminals.createTerminal({ cwd: req.cwd, size: { cols: 120, rows: 40 } }, { signal });
      return { terminal: terminalSummary(terminal) };
    },
    async sendTerminalInput(req, caller, signal) {
      const { terminals } = await sessions.runnerOf(caller, req.replId);
      const before = await terminals.readScrollback({ terminalId: req.terminalId, maxBytes: 1 }, { signal });
      await terminals.sendInput({ terminalId: req.terminalId, data: utf8.encode(req.input) }, { signal });
      await new Promise((resolve) => setTimeout(resolve, req.waitMs || 500));
      const after = await terminals.readScrollback({ terminalId: req.terminalId }, { signal });
      const fresh = Number(after.totalBytes - before.totalBytes);
      const bytes = after.data.subarray(Math.max(0, after.data.length - fresh));
      return { output: tail(plainText(new TextDecoder().decode(bytes)), limits.terminalChars).text };
    },
    async readTerminalOutput(req, caller, signal) {
      const { terminals } = await sessions.runnerOf(caller, req.replId);
      const max = req.maxChars || limits.terminalChars;
      const res = await terminals.readScrollback({ terminalId: req.terminalId, maxBytes: max * 4 }, { signal });
      return {
        output: tail(plainText(new TextDecoder().decode(res.data)), max).text,
        terminal: terminalSummary(res.terminal),
      };
    },
    async closeTerminal(req, caller, signal) {
      const { terminals } = await sessions.runnerOf(caller, req.replId);
      await terminals.closeTerminal({ terminalId: req.terminalId }, { signal });
      return { terminalId: req.terminalId };
    },
  };
}
