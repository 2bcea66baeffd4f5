/**
 * The repl's environment variables as core last sent them (RunnerControlService.WatchEnvironment,
 * secrets' values included): every terminal, command and process started from then on gets them.
 * They live in this process's memory only, never in a file or a log line.
 */
import type { GitRemote } from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import type { Logger } from "../../../../lib/kit/log.js";
import { followFeed } from "./feed.js";

export interface EnvironmentFeed {
  /**
   * The variables, once core has sent them: a process started before the first message would miss
   * them (a client creates its first terminal right after StartRepl). Waits at most `waitMs`, and
   * not at all once the feed has failed (core unreachable: processes start without them).
   */
  variables(): Promise<Readonly<Record<string, string>>>;
  /** The repository git reaches through the relay (git-relay.ts), as of the last message. */
  gitRemote(): GitRemote | undefined;
  stop(): void;
}

export function followEnvironment(d: {
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  log: Logger;
  /** How long a process waits for core's first message (default 5 s); then it starts without the variables. */
  waitMs?: number;
}): EnvironmentFeed {
  let current: Readonly<Record<string, string>> = {};
  let remote: GitRemote | undefined;
  let waited = false;
  let warned = false;
  let arrived: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const feed = followFeed({
    open: (signal) => d.client.watchEnvironment({ replId: d.replId, runnerId: d.runnerId }, { signal }),
    onMessage: (m) => {
      current = { ...m.variables };
      remote = m.git;
      arrived();
    },
    name: "environment",
    log: d.log,
    onBreak: () => {
      // Before the first message: say so once (it retries with backoff), and let waiting processes start.
      if (!waited && !warned) {
        warned = true;
        d.log.warn(
          "core's feed of the repl's environment variables failed; processes start without them until it is back",
        );
      }
      arrived();
    },
  });
  const wait = async () => {
    if (waited) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), d.waitMs ?? 5000);
    });
    if (await Promise.race([first.then(() => false), late])) {
      d.log.warn("core has not sent the repl's environment variables; starting without them");
    }
    clearTimeout(timer);
    waited = true;
  };
  return {
    async variables() {
      await wait();
      return current;
    },
    gitRemote: () => remote,
    stop() {
      feed.stop();
      arrived();
    },
  };
}
