/**
 * The repl tools: list, create, start, stop, delete and status of the caller's repls, the GitHub
 * repositories a repl can be created from, and the templates: the operator's and the caller's own,
 * which save_template makes from a stopped repl.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import { failedPrecondition, notFound } from "../../../../lib/kit/errors.js";
import { waitForClone } from "./clone-progress.js";
import { withLifecycleProgress } from "./lifecycle-progress.js";
import { egressRequest } from "./network-tools.js";
import {
  gitHubRepositorySummary,
  processSummary,
  replSummary,
  statusName,
  templateSummary,
  terminalSummary,
} from "./summaries.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type ReplTools = Pick<
  ToolImpls,
  | "listRepls"
  | "listTemplates"
  | "listGitHubRepositories"
  | "createRepl"
  | "startRepl"
  | "stopRepl"
  | "deleteRepl"
  | "getReplStatus"
  | "saveTemplate"
  | "deleteTemplate"
>;

export function replTools({ core, sessions, limits }: ToolContext): ReplTools {
  return {
    async listRepls(_req, caller) {
      const { repls } = await core(caller).repls.listRepls({});
      return { repls: repls.map(replSummary) };
    },
    async listTemplates(_req, caller) {
      const { templates } = await core(caller).repls.listTemplates({});
      return { templates: templates.map(templateSummary) };
    },
    async listGitHubRepositories(req, caller, signal) {
      // Core's FailedPrecondition (no GitHub sign-in) reaches the agent as it is: it says what to do.
      const res = await core(caller).repls.listGitHubRepositories({ page: req.page }, { signal });
      return { repositories: res.repositories.map(gitHubRepositorySummary), more: res.more };
    },
    async saveTemplate(req, caller) {
      const repl = await sessions.getRepl(caller, req.replId);
      if (repl.status !== ReplStatus.STOPPED) {
        // Core refuses too; this says what to do about it.
        throw failedPrecondition(
          `repl "${req.replId}" is ${statusName(repl.status)}: a template is made from a stopped repl's saved files, call stop_repl first`,
        );
      }
      const { template } = await core(caller).repls.saveTemplate({
        replId: req.replId,
        title: req.title,
        description: req.description,
        runCommand: req.runCommand,
        setupCommand: req.setupCommand,
        previewPort: req.previewPort,
      });
      return { template: templateSummary(template) };
    },
    async deleteTemplate(req, caller) {
      try {
        await core(caller).repls.deleteTemplate({ name: req.name });
      } catch (e) {
        if (ConnectError.from(e).code !== Code.NotFound) throw e;
        const { templates } = await core(caller).repls.listTemplates({});
        const own = templates.filter((t) => t.owner).map((t) => t.name);
        throw notFound(
          `you have no template "${req.name}" (the server's templates cannot be deleted). ${own.length ? `Yours: ${own.join(", ")}.` : "You have none: save_template makes one."}`,
        );
      }
      return { name: req.name };
    },
    async createRepl(req, caller, signal, report) {
      const egress = egressRequest(req.network);
      const git = req.git && {
        url: req.git.url,
        ref: req.git.ref,
        fullHistory: req.git.fullHistory,
        allowPush: req.git.allowPush,
      };
      const { repl } = await core(caller).repls.createRepl({ name: req.name, template: req.template, egress, git });
      if (!git || !repl) return { repl: replSummary(repl) };
      return { repl: replSummary(await waitForClone(core(caller), repl, report, signal, limits.cloneWaitMs)) };
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
