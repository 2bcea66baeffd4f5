/** Core's configuration, from the environment (documented in services/core/README.md). */
import { join } from "node:path";
import type { EgressPolicy } from "../../../lib/egress/policy.js";
import { env } from "../../../lib/kit/config.js";
import { projectRoot } from "../../../lib/kit/project-root.js";
import * as z from "../../../lib/kit/zod.js";
import { kubernetesConfigFields, kubernetesConfigProblems } from "./driver/kubernetes/config.js";

const optional = () => z.optional(z.string());
const text = (fallback: string) => z._default(z.string(), fallback);
const { integer } = env;

export const coreConfigSchema = z
  .object({
    DEVEX_CORE_PORT: env.port(8080),
    DEVEX_CORE_HOST: text("127.0.0.1"),
    DEVEX_PUBLIC_URL: z.optional(env.url()),
    /** The preview origin's port (local driver, proxied access); defaults to DEVEX_CORE_PORT + 1. */
    DEVEX_PREVIEW_PORT: z.optional(integer(z.minimum(0), z.maximum(65535))),
    /** URL browsers use to reach the preview origin; defaults to its listening URL. */
    DEVEX_PREVIEW_PUBLIC_URL: z.optional(env.url()),
    DEVEX_DATA_DIR: text(".data"),
    DEVEX_TEMPLATES_DIR: text(join(projectRoot, "templates")),
    DEVEX_LOG_LEVEL: env.logLevel(),
    REDIS_URL: optional(),
    DEVEX_S3_BUCKET: optional(),
    DEVEX_S3_ENDPOINT: z.optional(env.url()),
    DEVEX_S3_REGION: text("us-east-1"),
    DEVEX_S3_ACCESS_KEY_ID: optional(),
    DEVEX_S3_SECRET_ACCESS_KEY: optional(),
    DEVEX_S3_FORCE_PATH_STYLE: env.bool(false),
    DEVEX_S3_PREFIX: text(""),
    GITHUB_CLIENT_ID: optional(),
    GITHUB_CLIENT_SECRET: optional(),
    /** GitHub Enterprise Server: its web URL (sign-in, and where repositories are cloned from) and its API's. */
    DEVEX_GITHUB_URL: text("https://github.com"),
    /** Unset: api.github.com for github.com, else <DEVEX_GITHUB_URL>/api/v3 (GitHub Enterprise Server's). */
    DEVEX_GITHUB_API_URL: optional(),
    /** Ask GitHub sign-ins for access to the user's repositories (scope "repo") and keep the grant sealed. */
    DEVEX_GITHUB_REPOSITORIES: env.bool(true),
    DEVEX_REPL_QUOTA: z._default(integer(z.minimum(1), z.maximum(10_000)), 2),
    DEVEX_TEMPLATE_QUOTA: z._default(integer(z.minimum(1), z.maximum(10_000)), 20),
    /** Checkpoints kept per repl; past it the oldest automatic ones go first. */
    DEVEX_CHECKPOINT_MAX_COUNT: z._default(integer(z.minimum(1), z.maximum(10_000)), 50),
    /** Checkpoints older than this many days are deleted. */
    DEVEX_CHECKPOINT_MAX_AGE_DAYS: z._default(integer(z.minimum(1), z.maximum(36_500)), 30),
    /** An automatic checkpoint ("before-stop") of the files each stop saved. */
    DEVEX_CHECKPOINT_ON_STOP: env.bool(true),
    DEVEX_GIT_MAX_SIZE: z._default(integer(z.minimum(1024 * 1024)), 2 * 1024 ** 3),
    DEVEX_GIT_CLONE_TIMEOUT: env.duration("10m"),
    DEVEX_GIT_ALLOW_HTTP: env.bool(false),
    DEVEX_SIGNING_KEY_FILE: optional(),
    DEVEX_COOKIE_SECRET: z.optional(z.string().check(z.minLength(16))),
    /** Key of repls' secrets, 32 bytes as base64 or hex; unset: made in DEVEX_DATA_DIR/secrets-key (give every replica the same). */
    DEVEX_SECRETS_KEY: z.optional(z.string().check(z.minLength(32))),
    DEVEX_LOCAL_USER: z._default(z.string().check(z.regex(/^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$/)), "local"),
    DEVEX_RUNNER_TOKEN_TTL: env.duration("15m"),
    DEVEX_HEARTBEAT_INTERVAL: env.duration("30s"),
    /**
     * Runtime driver: "local" runs runners as processes on this machine; "kubernetes" runs each repl as a
     * Deployment (DEVEX_K8S_*, see driver/kubernetes/config.ts); "none" cannot start repls.
     */
    DEVEX_DRIVER: z._default(z.enum(["local", "kubernetes", "none"]), "local"),
    ...kubernetesConfigFields,
    DEVEX_RUNNER_POOL_SIZE: z._default(integer(z.minimum(0), z.maximum(64)), 2),
    DEVEX_RUNNER_IDLE_TIMEOUT: env.duration("10m"),
    DEVEX_PERSIST_INTERVAL: env.duration("5m"),
    /** "auto" uses bubblewrap when installed, "bwrap" requires it (start fails without), "none" never. */
    DEVEX_SANDBOX: z._default(z.enum(["auto", "bwrap", "none"]), "auto"),
    DEVEX_SANDBOX_NETWORK: env.bool(false),
    /**
     * Outbound network for local repls (their private namespace, services/core/src/driver/local/network):
     * "auto" through pasta when installed, "pasta" requires it, "off" leaves repls without any.
     */
    DEVEX_EGRESS: z._default(z.enum(["auto", "pasta", "off"]), "auto"),
    /** The egress policy of new repls whose template names none. */
    DEVEX_EGRESS_DEFAULT: z._default(z.enum(["allow_all", "deny_all"]), "allow_all"),
    /** Comma-separated CIDRs no repl may reach, added to the built-in ones (e.g. cluster or office ranges). */
    DEVEX_EGRESS_DENY_CIDRS: text(""),
    /** Comma-separated resolvers (address or address:port) repls' names are looked up with; default: /etc/resolv.conf's. */
    DEVEX_EGRESS_DNS: text(""),
    /**
     * Core running as root: the first of the unprivileged host uids (and gids) runners run as, one
     * each, 10,000 in all; above the usual /etc/subuid ranges and below 2^31.
     */
    DEVEX_SANDBOX_UID: z._default(integer(z.minimum(1), z.maximum(2_147_000_000)), 200_000_000),
    DEVEX_SANDBOX_MEMORY: z._default(integer(z.minimum(64 * 1024 * 1024)), 8 * 1024 ** 3),
    DEVEX_SANDBOX_PROCESSES: z._default(integer(z.minimum(8)), 512),
    DEVEX_SANDBOX_CPU_SECONDS: z._default(integer(z.minimum(1)), 3600),
    DEVEX_SANDBOX_FILE_SIZE: z._default(integer(z.minimum(1024 * 1024)), 2 * 1024 ** 3),
    /** Clients reach runners through core at <public url>/<replId> (one origin) unless "direct". */
    DEVEX_RUNNER_ACCESS: z._default(z.enum(["proxied", "direct"]), "proxied"),
    /**
     * Core runs behind a proxy (a load balancer, an ingress) that appends the client's address to
     * X-Forwarded-For: the audit log then records that address instead of the proxy's. Only set it
     * when nothing reaches core except through that proxy, or clients can name any address.
     */
    DEVEX_TRUST_PROXY: env.bool(false),
    /** How long audit events are kept (services/core/src/audit/); 0: no age limit, only the counts below bound the log. */
    DEVEX_AUDIT_RETENTION: env.duration("90d"),
    /**
     * At most this many audit events in all, and per user; the oldest go first. In all: 200,000 on
     * Redis, 50,000 on the embedded store, which holds them in memory (audit/retention.ts).
     */
    DEVEX_AUDIT_MAX_EVENTS: z.optional(integer(z.minimum(100))),
    DEVEX_AUDIT_MAX_USER_EVENTS: z._default(integer(z.minimum(100)), 20_000),
  })
  .check(
    z.refine((c) => !!c.GITHUB_CLIENT_ID === !!c.GITHUB_CLIENT_SECRET, {
      message: "set both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, or neither",
      path: ["GITHUB_CLIENT_SECRET"],
    }),
    z.refine((c) => !!c.DEVEX_S3_ACCESS_KEY_ID === !!c.DEVEX_S3_SECRET_ACCESS_KEY, {
      message: "set both DEVEX_S3_ACCESS_KEY_ID and DEVEX_S3_SECRET_ACCESS_KEY, or neither (default AWS credentials)",
      path: ["DEVEX_S3_SECRET_ACCESS_KEY"],
    }),
    z.superRefine((c, ctx) => {
      if (c.DEVEX_DRIVER !== "kubernetes") return;
      for (const message of kubernetesConfigProblems(c))
        ctx.addIssue({ code: "custom", message, path: ["DEVEX_DRIVER"] });
    }),
  );

export type CoreConfig = z.output<typeof coreConfigSchema>;

/** The egress policy of repls whose template names none (DEVEX_EGRESS_DEFAULT). */
export function egressDefault(config: Pick<CoreConfig, "DEVEX_EGRESS_DEFAULT">): EgressPolicy {
  return { mode: config.DEVEX_EGRESS_DEFAULT, domains: [], cidrs: [] };
}
