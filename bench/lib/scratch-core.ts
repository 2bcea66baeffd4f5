/**
 * The embedded core as `npm start` builds it (start-core.ts from core's config schema), in this
 * process over a scratch data dir, with an API token for one user: what the cli and density benches
 * talk to. `close` stops core (persisting and stopping its runners) and removes the data dir.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor } from "../../lib/client/node.js";
import { createLogger, type LogOptions } from "../../lib/kit/log.js";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { coreConfigSchema } from "../../services/core/src/config.js";
import { type StartedCore, startCore } from "../../services/core/src/start-core.js";

export interface ScratchCore {
  e: StartedCore;
  dataDir: string;
  url: string;
  token: string;
  api: CoreClients;
  close(): Promise<void>;
}

export async function startScratchCore(
  name: string,
  env: Record<string, string>,
  log: LogOptions = { level: "warn" },
): Promise<ScratchCore> {
  const dataDir = await mkdtemp(join(tmpdir(), `devex-bench-${name}-`));
  try {
    const config = coreConfigSchema.parse({ DEVEX_DATA_DIR: dataDir, DEVEX_CORE_PORT: "0", ...env });
    const e = await startCore(config, { log: createLogger("core", log) });
    const { secret: token } = await issueApiToken(e.state, "bench", "bench");
    return {
      e,
      dataDir,
      url: e.core.url,
      token,
      api: coreClientsFor(e.core.url, { token }),
      async close() {
        try {
          await e.close(AbortSignal.timeout(120_000));
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
