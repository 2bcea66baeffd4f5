/**
 * Mocha's global setup (.mocharc.json): rebuilds the bundles in dist/ whose sources changed, so the
 * runner processes, the CLI and the services the tests start are the ones `npm install` would build
 * from this checkout (scripts/build.mjs), never a stale build.
 */
import { buildAll } from "../../scripts/build.mjs";

export async function mochaGlobalSetup(): Promise<void> {
  await buildAll({ ifStale: true });
}
