/**
 * WatchEnvironment: a runner's feed of its repl's environment variables (repl/environment.ts),
 * secrets opened: the current ones first, then each change. The one way a secret's value leaves core.
 */
import { create } from "@bufbuild/protobuf";
import {
  type WatchEnvironmentResponse,
  WatchEnvironmentResponseSchema,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { ReplDeps } from "../repl/deps.js";
import { plainEnvironment } from "../repl/environment.js";
import { gitRemoteOf } from "../repl/git-route.js";
import { followRepl } from "./follow-repl.js";

export function watchEnvironment(
  deps: ReplDeps,
  runner: { replId: string; runnerId: string },
  signal: AbortSignal,
): AsyncGenerator<WatchEnvironmentResponse> {
  // Compared as stored (sealed): a change is seen without opening every secret each second.
  return followRepl(deps, runner.replId, runner.runnerId, signal, (r) => ({
    key: JSON.stringify([r.env ?? {}, r.git?.githubGrant ?? false]),
    message: () =>
      create(WatchEnvironmentResponseSchema, { variables: plainEnvironment(deps, r), git: gitRemoteOf(r) }),
  }));
}
