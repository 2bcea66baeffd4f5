/**
 * The egress proxy's configuration, from the environment:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | REDIS_URL | (required) | core's Redis: the repls' egress policies are read from their records |
 * | DEVEX_EGRESS_SECRET | (required) | the secret repl credentials are HMACs under; core's DEVEX_K8S_EGRESS_SECRET |
 * | DEVEX_EGRESS_PORT | 3128 | port of the proxy |
 * | DEVEX_EGRESS_HOST | 0.0.0.0 | interface to bind |
 * | DEVEX_EGRESS_DEFAULT | allow_all | the policy of repls whose record carries none (created before policies); core's setting |
 * | DEVEX_EGRESS_DENY_CIDRS | (none) | ranges no repl reaches besides the built-in ones |
 * | DEVEX_K8S_POD_CIDRS, DEVEX_K8S_SERVICE_CIDRS, DEVEX_K8S_API_SERVER_CIDRS | (none) | the cluster's own ranges, denied too |
 *
 * The DEVEX_EGRESS_* and DEVEX_K8S_*_CIDRS settings are core's (infra/k8s gives the proxy core's
 * ConfigMap), so the proxy and the repls' NetworkPolicies deny the same ranges.
 * | DEVEX_LOG_LEVEL | info | pino level |
 */

import { cidrListSetting } from "../../../lib/egress/host-ranges.js";
import { env, loadConfig } from "../../../lib/kit/config.js";
import * as z from "../../../lib/kit/zod.js";

export const egressConfigSchema = z.object({
  REDIS_URL: z.string().check(z.regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")),
  DEVEX_EGRESS_SECRET: z.string().check(z.minLength(32, "must be at least 32 characters")),
  DEVEX_EGRESS_PORT: env.port(3128),
  DEVEX_EGRESS_HOST: z._default(z.string(), "0.0.0.0"),
  DEVEX_EGRESS_DEFAULT: z._default(z.enum(["allow_all", "deny_all"]), "allow_all"),
  DEVEX_EGRESS_DENY_CIDRS: cidrListSetting(),
  DEVEX_K8S_POD_CIDRS: cidrListSetting(),
  DEVEX_K8S_SERVICE_CIDRS: cidrListSetting(),
  DEVEX_K8S_API_SERVER_CIDRS: cidrListSetting(),
  DEVEX_LOG_LEVEL: env.logLevel(),
});

export type EgressConfig = z.output<typeof egressConfigSchema>;

/** Every range the proxy never connects to besides lib/egress's never tier. */
export const deniedCidrs = (c: EgressConfig) => [
  ...c.DEVEX_EGRESS_DENY_CIDRS,
  ...c.DEVEX_K8S_POD_CIDRS,
  ...c.DEVEX_K8S_SERVICE_CIDRS,
  ...c.DEVEX_K8S_API_SERVER_CIDRS,
];

export function loadEgressConfig(source: NodeJS.ProcessEnv = process.env): EgressConfig {
  return loadConfig(egressConfigSchema, source);
}
