/** The process tools: run a command to completion (exec), start one in the background, list, read and kill them. */
import { LiveOutput } from "./live-output.js";
import { tail } from "./output.js";
import { processSummary } from "./summaries.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type ProcessTools = Pick<ToolImpls, "exec" | "startProcess" | "listProcesses" | "readProcessOutput" | "killProcess">;

export function processTools({ sessions, limits }: ToolContext): ProcessTools {
  return {
    async exec(req, caller, signal, report) {
      const { processes } = await sessions.runnerOf(caller, req.replId);
      const timeoutSeconds = req.timeoutSeconds || 120;
      const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() };
      let stdout = "";
      let stderr = "";
      let total = { stdout: 0, stderr: 0 };
      let exit: { exitCode: number; signal: string; timedOut: boolean } | undefined;
      const stream = processes.exec(
        {
          command: { shell: req.command, cwd: req.cwd, env: req.env },
          timeout: { seconds: BigInt(timeoutSeconds) },
        },
        { signal },
      );
      const live = new LiveOutput(report, timeoutSeconds);
      try {
        for await (const ev of stream) {
          // Keep a bounded window while streaming; the final cut below reports how much was dropped.
          if (ev.event.case === "stdout") {
            const text = decoder.stdout.decode(ev.event.value, { stream: true });
            total = { ...total, stdout: total.stdout + text.length };
            stdout = keepTail(stdout + text, limits.execChars);
            live.add("stdout", text);
          } else if (ev.event.case === "stderr") {
            const text = decoder.stderr.decode(ev.event.value, { stream: true });
            total = { ...total, stderr: total.stderr + text.length };
            stderr = keepTail(stderr + text, limits.execChars);
            live.add("stderr", text);
          } else if (ev.event.case === "exit") exit = ev.event.value;
        }
      } finally {
        live.end();
      }
      const out = tail(stdout, limits.execChars, "stdout", total.stdout);
      const err = tail(stderr, limits.execChars, "stderr", total.stderr);
      return {
        exitCode: exit?.signal ? -1 : (exit?.exitCode ?? -1),
        signal: exit?.signal ?? "",
        timedOut: exit?.timedOut ?? false,
        stdout: out.text,
        stderr: err.text,
        note: [out.note, err.note].filter(Boolean).join("; "),
      };
    },
    async startProcess(req, caller, signal) {
      const { processes } = await sessions.runnerOf(caller, req.replId);
      const { process } = await processes.startProcess(
        { command: { shell: req.command, cwd: req.cwd }, name: req.name },
        { signal },
      );
      return { process: processSummary(process) };
    },
    async listProcesses(req, caller, signal) {
      const { processes } = await sessions.runnerOf(caller, req.replId);
      const res = await processes.listProcesses({}, { signal });
      return { processes: res.processes.map(processSummary) };
    },
    async readProcessOutput(req, caller, signal) {
      const { processes } = await sessions.runnerOf(caller, req.replId);
      const max = req.maxBytes || 16_384;
      const res = await processes.readProcessOutput(
        { processId: req.processId, maxBytes: max, tail: true },
        { signal },
      );
      const before = res.offset;
      return {
        output: new TextDecoder().decode(res.data),
        process: processSummary(res.process),
        note: before > 0n ? `showing the last ${res.data.length} bytes; ${before} earlier bytes not shown` : "",
      };
    },
    async killProcess(req, caller, signal) {
      const { processes } = await sessions.runnerOf(caller, req.replId);
      const { process } = await processes.killProcess({ processId: req.processId }, { signal });
      return { process: processSummary(process) };
    },
  };
}

/** Bounds a streaming buffer to what tail() can return; the caller counts what falls off. */
function keepTail(text: string, max: number): string {
  return text.length > 2 * max ? text.slice(-max) : text;
}
