/**
 * The environment tools: a repl's environment variables and secrets (core's ReplService). A
 * secret's value is write-only: core never returns it, so no tool can show it to an agent.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EnvironmentVariable } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type EnvironmentTools = Pick<
  ToolImpls,
  "listEnvironmentVariables" | "setEnvironmentVariable" | "deleteEnvironmentVariable"
>;

function variables(list: EnvironmentVariable[]) {
  return {
    variables: list.map((v) => ({
      name: v.name,
      value: v.secret ? "" : v.value,
      secret: v.secret,
      updateTime: v.updateTime ? timestampDate(v.updateTime).toISOString() : "",
    })),
  };
}

export function environmentTools({ core, sessions }: ToolContext): EnvironmentTools {
  return {
    async listEnvironmentVariables(req, caller) {
      await sessions.getRepl(caller, req.replId);
      return variables((await core(caller).repls.listEnvironmentVariables({ replId: req.replId })).variables);
    },
    async setEnvironmentVariable(req, caller) {
      await sessions.getRepl(caller, req.replId);
      const res = await core(caller).repls.setEnvironmentVariable({
        replId: req.replId,
        name: req.name,
        value: req.value,
        secret: req.secret,
      });
      return variables(res.variables);
    },
    async deleteEnvironmentVariable(req, caller) {
      await sessions.getRepl(caller, req.replId);
      const res = await core(caller).repls.deleteEnvironmentVariable({ replId: req.replId, name: req.name });
      return variables(res.variables);
    },
  };
}
