/** The repl tools: list, create, start, stop, delete and status of the caller's repls, and the templates. */
import { ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import { withLifecycleProgress } from "./lifecycle-progress.js";
import { egressRequest } from "./network-tools.js";
import { processSummary, replSummary, terminalSummary } from "./summaries.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type ReplTools = Pick<
  ToolImpls,
  "listRepls" | "listTemplates" | "createRepl" | "startRepl" | "stopRepl" | "deleteRepl" | "getReplStatus"
>;

export function replTools({ core, sessions }: ToolContext): ReplTools {
  return {
    async listRepls(_req, caller) {
      const { repls } = await core(caller).repls.listRepls({});
      return { repls: repls.map(replSummary) };
    },
    async listTemplates(_req, caller) {
      const { templates } = await core(caller).repls.listTemplates({});
      return {
        templates: templates.map((t) => ({ name: t.name, description: t.description, runCommand: t.runCommand })),
      };
    },
    async createRepl(req, caller) {
      const egress = egressRequest(req.network);
      const { repl } = await core(caller).repls.createRepl({ name: req.name, template: req.template, egress });
      return { repl: replSummary(repl) };
    },
    async startRepl(req, caller, _signal, report) {
      await sessions.getRepl(caller, req.replId);
      const { repl } = await withLifecycleProgress(core(caller), req.replId, report, "start", () =>
        sessions.startSession(caller, req.replId),
      );
      return { repl: replSummary(repl) };
    },
    async stopRepl(req, caller, _signal, report) {
      await sessions.getRepl(caller, req.replId);
      sessions.forget(caller, req.replId);
      const { repl } = await withLifecycleProgress(core(caller), req.replId, report, "stop", () =>
        core(caller).repls.stopRepl({ replId: req.replId }),
      );
      return { repl: replSummary(repl) };
    },
    async deleteRepl(req, caller) {
      await sessions.getRepl(caller, req.replId);
      sessions.forget(caller, req.replId);
      await core(caller).repls.deleteRepl({ replId: req.replId });
      return { replId: req.replId };
    },
    async getReplStatus(req, caller, signal) {
      const repl = await sessions.getRepl(caller, req.replId);
      if (repl.status !== ReplStatus.RUNNING) return { repl: replSummary(repl) };
      const runner = await sessions.runnerOf(caller, req.replId);
      const [{ terminals }, { processes }] = await Promise.all([
        runner.terminals.listTerminals({}, { signal }),
        runner.processes.listProcesses({}, { signal }),
      ]);
      return {
        repl: replSummary(repl),
        terminals: terminals.map(terminalSummary),
        processes: processes.map(processSummary),
      };
    },
  };
}
