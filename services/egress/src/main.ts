/**
 * The cluster's egress proxy: `node dist/egress/main.mjs` (configuration in config.ts;
 * deployed by infra/k8s/base/egress.yaml). Stateless: policies are read from core's Redis.
 */

import { hostAddresses } from "../../../lib/egress/host-ranges.js";
import { EgressRanges } from "../../../lib/egress/policy.js";
import { configOrExit } from "../../../lib/kit/config.js";
import { createLogger } from "../../../lib/kit/log.js";
import { onShutdown } from "../../../lib/kit/shutdown.js";
import { deniedCidrs, loadEgressConfig } from "./config.js";
import { policyRedis, redisPolicySource } from "./policies.js";
import { createEgressProxy } from "./proxy.js";

const config = configOrExit(loadEgressConfig);
const log = createLogger("egress", { level: config.DEVEX_LOG_LEVEL });
// ioredis retries every few hundred ms: say when the error changes, not each time.
let lastRedisError = "";
const redis = policyRedis(config.REDIS_URL, (err) => {
  if (err.message !== lastRedisError) log.warn({ err: err.message }, "redis unreachable: requests get 503");
  lastRedisError = err.message;
});
redis.on("ready", () => {
  if (lastRedisError) log.info("redis reachable again");
  lastRedisError = "";
});
const server = createEgressProxy({
  secret: config.DEVEX_EGRESS_SECRET,
  policies: redisPolicySource(redis, { fallback: { mode: config.DEVEX_EGRESS_DEFAULT, domains: [], cidrs: [] } }),
  // The proxy's own addresses too: a repl must not loop back into it.
  ranges: new EgressRanges([
    ...hostAddresses().map((a) => `${a}/${a.includes(":") ? 128 : 32}`),
    ...deniedCidrs(config),
  ]),
  log,
});
server.listen(config.DEVEX_EGRESS_PORT, config.DEVEX_EGRESS_HOST, () =>
  log.info(`egress proxy on ${config.DEVEX_EGRESS_HOST}:${config.DEVEX_EGRESS_PORT}`),
);
onShutdown(log, [() => new Promise<void>((resolve) => server.close(() => resolve())), () => void redis.disconnect()]);
