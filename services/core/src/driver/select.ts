/** The one place that picks the runtime driver from config. */
import { join } from "node:path";
import type { BlobStore } from "../../../../lib/blob/store.js";
import { egressRangesFor } from "../../../../lib/egress/host-ranges.js";
import { EgressRanges } from "../../../../lib/egress/policy.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { TokenSigner } from "../../../../lib/kit/tokens.js";
import { type CoreConfig, egressDefault } from "../config.js";
import { createUnconfiguredDriver, type Driver } from "./driver.js";
import { kubernetesDeniedCidrs, kubernetesDriverFromConfig } from "./kubernetes/config.js";
import { createLocalDriver, type LocalDriver } from "./local/local-driver.js";
import { createSandbox } from "./local/sandbox.js";

/** The ranges no repl reaches: on Kubernetes the cluster's own besides the operator's; locally this host's addresses. */
export function egressRangesForDriver(config: CoreConfig): EgressRanges {
  return config.DEVEX_DRIVER === "kubernetes"
    ? new EgressRanges(kubernetesDeniedCidrs(config))
    : egressRangesFor(config.DEVEX_EGRESS_DENY_CIDRS);
}

export async function openDriver(
  config: CoreConfig,
  deps: { blobs: BlobStore; signer: TokenSigner; log: Logger; egressRanges: EgressRanges },
): Promise<{ driver: Driver; local?: LocalDriver }> {
  if (config.DEVEX_DRIVER === "kubernetes") {
    return { driver: kubernetesDriverFromConfig(config, deps.signer, deps.log) };
  }
  if (config.DEVEX_DRIVER === "none") {
    deps.log.warn("DEVEX_DRIVER=none: this core cannot start repls");
    return { driver: createUnconfiguredDriver() };
  }
  const sandbox = createSandbox({
    mode: config.DEVEX_SANDBOX,
    network: config.DEVEX_SANDBOX_NETWORK,
    uid: config.DEVEX_SANDBOX_UID,
    limits: {
      addressSpaceBytes: config.DEVEX_SANDBOX_MEMORY,
      processes: config.DEVEX_SANDBOX_PROCESSES,
      cpuSeconds: config.DEVEX_SANDBOX_CPU_SECONDS,
      fileSizeBytes: config.DEVEX_SANDBOX_FILE_SIZE,
    },
  });
  deps.log.info(
    { isolation: sandbox.kind, rlimits: sandbox.rlimits },
    `local driver: isolation ${sandbox.description}`,
  );
  if (sandbox.kind === "none" && config.DEVEX_SANDBOX === "auto") {
    deps.log.warn("bubblewrap (bwrap) not found: repl commands run unsandboxed; install bubblewrap");
  }
  const local = await createLocalDriver({
    dataDir: join(config.DEVEX_DATA_DIR, "local"),
    blobs: deps.blobs,
    signer: deps.signer,
    sandbox,
    log: deps.log.child({ driver: "local" }),
    poolSize: config.DEVEX_RUNNER_POOL_SIZE,
    persistIntervalMs: config.DEVEX_PERSIST_INTERVAL,
    idleTimeoutMs: config.DEVEX_RUNNER_IDLE_TIMEOUT,
    heartbeatIntervalMs: config.DEVEX_HEARTBEAT_INTERVAL,
    access: config.DEVEX_RUNNER_ACCESS,
    runnerLogLevel: config.DEVEX_LOG_LEVEL,
    egress: {
      mode: config.DEVEX_EGRESS,
      dns: config.DEVEX_EGRESS_DNS,
      ranges: deps.egressRanges,
      defaultPolicy: egressDefault(config),
      log: deps.log.child({ driver: "local", part: "egress" }),
    },
  });
  deps.log.info(`local driver: outbound network ${local.networkDescription}`);
  return { driver: local, local };
}
