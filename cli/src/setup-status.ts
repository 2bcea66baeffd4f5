/** How a repl's setup command (repl.proto, Setup) reads in the CLI's tables and messages. */
import { type Setup, SetupStatus } from "../../gen/devex/core/v1/repl_pb.js";

const setupNames: Record<SetupStatus, string> = {
  [SetupStatus.UNSPECIFIED]: "",
  [SetupStatus.PENDING]: "pending",
  [SetupStatus.RUNNING]: "running",
  [SetupStatus.SUCCEEDED]: "succeeded",
  [SetupStatus.FAILED]: "failed",
};

/** "pending", "running", "succeeded", "failed (exit 2)", "failed: <why>"; "" without a setup command. */
export function setupLabel(setup: Setup | undefined): string {
  if (!setup?.command) return "";
  const name = setupNames[setup.status];
  if (setup.status !== SetupStatus.FAILED) return name;
  return setup.message ? `${name}: ${setup.message}` : `${name} (exit ${setup.exitCode})`;
}
