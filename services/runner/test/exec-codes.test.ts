/** Exec like bash on a standalone runner: no command prefix, commands spawned by the runner itself. */
import type { Client } from "@connectrpc/connect";
import { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { execCodeSuite } from "./exec-codes.js";
import { connectClient, startTestRunner, type TestRunner } from "./helpers.js";

describe("standalone runner", function () {
  this.timeout(60_000);
  let t: TestRunner;
  let procs: Client<typeof ProcessService>;

  before(async function () {
    requireProgram(this, "bash");
    t = await startTestRunner();
    procs = connectClient(ProcessService, t.runner.url, t.token);
  });
  after(() => t?.close());

  execCodeSuite("standalone runner, no command prefix", () => procs);
});
