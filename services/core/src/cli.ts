/**
 * Admin commands that act directly on the configured store (same environment as core).
 *
 *   node dist/core/cli.mjs create-token --user <user> --name <name> [--ttl 30d]
 *
 * Prints the new API token's secret on stdout (once; it is stored only as a hash). With the
 * embedded store, run it while core is stopped: core keeps the embedded state in memory and would
 * overwrite the change.
 */
import { parseArgs } from "node:util";
import { configOrExit, loadConfig, parseDuration } from "../../../lib/kit/config.js";
import { DomainError } from "../../../lib/kit/errors.js";
import { userIdPattern } from "./auth/principal.js";
import { DEFAULT_TOKEN_TTL_MS, issueApiToken } from "./auth/secrets.js";
import { coreConfigSchema } from "./config.js";
import { openStateStore } from "./storage.js";

const usage = "usage: node dist/core/cli.mjs create-token --user <user> --name <name> [--ttl 30d]";

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "create-token") {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: { user: { type: "string" }, name: { type: "string" }, ttl: { type: "string" } },
  });
  const ttlMs = values.ttl ? parseDuration(values.ttl) : DEFAULT_TOKEN_TTL_MS;
  if (!values.user || !userIdPattern.test(values.user)) {
    process.stderr.write(`--user must be a user id (lower-case letters, digits, dashes)\n${usage}\n`);
    return 2;
  }
  if (!values.name || !/^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,63}$/.test(values.name)) {
    process.stderr.write(`--name must be 1 to 64 letters, digits, spaces or ._:@-\n${usage}\n`);
    return 2;
  }
  if (!ttlMs || ttlMs < 60_000 || ttlMs > 365 * 86_400_000) {
    process.stderr.write(`--ttl must be a duration between 1m and 365d, such as 30d\n${usage}\n`);
    return 2;
  }
  const state = await openStateStore(configOrExit(() => loadConfig(coreConfigSchema)));
  try {
    const { record, secret } = await issueApiToken(state, values.user, values.name, ttlMs);
    process.stderr.write(
      `API token "${record.name}" (id ${record.tokenId}) for ${record.userId}, expires ${new Date(record.expireTime).toISOString()}\n`,
    );
    process.stdout.write(`${secret}\n`);
    return 0;
  } finally {
    await state.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err instanceof DomainError ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
