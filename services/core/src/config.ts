/** Core's configuration, from the environment (documented in services/core/README.md). */
import { join } from "node:path";
import { z } from "zod";
import { env } from "../../../lib/kit/config.js";
import { projectRoot } from "../../../lib/kit/project-root.js";
import { kubernetesConfigFields, kubernetesConfigProblems } from "./driver/kubernetes/config.js";

const optional = () => z.string().optional();

export const coreConfigSchema = z
  .object({
    DEVEX_CORE_PORT: env.port(8080),
    DEVEX_CORE_HOST: z.string().default("127.0.0.1"),
    DEVEX_PUBLIC_URL: env.url().optional(),
    /** The preview origin's port (local driver, proxied access); defaults to DEVEX_CORE_PORT + 1. */
    DEVEX_PREVIEW_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    /** URL browsers use to reach the preview origin; defaults to its listening URL. */
    DEVEX_PREVIEW_PUBLIC_URL: env.url().optional(),
    DEVEX_DATA_DIR: z.string().default(".data/core"),
    DEVEX_TEMPLATES_DIR: z.string().default(join(projectRoot, "templates")),
    DEVEX_LOG_LEVEL: env.logLevel(),
    REDIS_URL: optional(),
    DEVEX_S3_BUCKET: optional(),
    DEVEX_S3_ENDPOINT: env.url().optional(),
    DEVEX_S3_REGION: z.string().default("us-east-1"),
    DEVEX_S3_ACCESS_KEY_ID: optional(),
    DEVEX_S3_SECRET_ACCESS_KEY: optional(),
    DEVEX_S3_FORCE_PATH_STYLE: env.bool(false),
    DEVEX_S3_PREFIX: z.string().default(""),
    GITHUB_CLIENT_ID: optional(),
    GITHUB_CLIENT_SECRET: optional(),
    DEVEX_REPL_QUOTA: z.coerce.number().int().min(1).max(10_000).default(2),
    DEVEX_SIGNING_KEY_FILE: optional(),
    DEVEX_COOKIE_SECRET: z.string().min(16).optional(),
    DEVEX_LOCAL_USER: z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$/)
      .default("local"),
    DEVEX_RUNNER_TOKEN_TTL: env.duration("15m"),
    DEVEX_HEARTBEAT_INTERVAL: env.duration("30s"),
    /**
     * Runtime driver: "local" runs runners as processes on this machine; "kubernetes" runs each repl as a
     * Deployment (DEVEX_K8S_*, see driver/kubernetes/config.ts); "none" cannot start repls.
     */
    DEVEX_DRIVER: z.enum(["local", "kubernetes", "none"]).default("local"),
    ...kubernetesConfigFields,
    DEVEX_RUNNER_POOL_SIZE: z.coerce.number().int().min(0).max(64).default(2),
    DEVEX_RUNNER_IDLE_TIMEOUT: env.duration("10m"),
    DEVEX_PERSIST_INTERVAL: env.duration("5m"),
    /** "auto" uses bubblewrap when installed, "bwrap" requires it (start fails without), "none" never. */
    DEVEX_SANDBOX: z.enum(["auto", "bwrap", "none"]).default("auto"),
    DEVEX_SANDBOX_NETWORK: env.bool(false),
    /**
     * Outbound network for local repls (their private namespace, services/core/src/driver/local/network):
     * "auto" through pasta when installed, "pasta" requires it, "off" leaves repls without any.
     */
    DEVEX_EGRESS: z.enum(["auto", "pasta", "off"]).default("auto"),
    /** The egress policy of new repls whose template names none. */
    DEVEX_EGRESS_DEFAULT: z.enum(["allow_all", "deny_all"]).default("allow_all"),
    /** Comma-separated CIDRs no repl may reach, added to the built-in ones (e.g. cluster or office ranges). */
    DEVEX_EGRESS_DENY_CIDRS: z.string().default(""),
    /** Comma-separated resolvers (address or address:port) repls' names are looked up with; default: /etc/resolv.conf's. */
    DEVEX_EGRESS_DNS: z.string().default(""),
    /**
     * Core running as root: the first of the unprivileged host uids (and gids) runners run as, one
     * each, 10,000 in all; above the usual /etc/subuid ranges and below 2^31.
     */
    DEVEX_SANDBOX_UID: z.coerce.number().int().min(1).max(2_147_000_000).default(200_000_000),
    DEVEX_SANDBOX_MEMORY: z.coerce
      .number()
      .int()
      .min(64 * 1024 * 1024)
      .default(8 * 1024 ** 3),
    DEVEX_SANDBOX_PROCESSES: z.coerce.number().int().min(8).default(512),
    DEVEX_SANDBOX_CPU_SECONDS: z.coerce.number().int().min(1).default(3600),
    DEVEX_SANDBOX_FILE_SIZE: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(2 * 1024 ** 3),
    /** Clients reach runners through core at <public url>/<replId> (one origin) unless "direct". */
    DEVEX_RUNNER_ACCESS: z.enum(["proxied", "direct"]).default("proxied"),
  })
  .refine((c) => !!c.GITHUB_CLIENT_ID === !!c.GITHUB_CLIENT_SECRET, {
    message: "set both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, or neither",
    path: ["GITHUB_CLIENT_SECRET"],
  })
  .refine((c) => !!c.DEVEX_S3_ACCESS_KEY_ID === !!c.DEVEX_S3_SECRET_ACCESS_KEY, {
    message: "set both DEVEX_S3_ACCESS_KEY_ID and DEVEX_S3_SECRET_ACCESS_KEY, or neither (default AWS credentials)",
    path: ["DEVEX_S3_SECRET_ACCESS_KEY"],
  })
  .superRefine((c, ctx) => {
    if (c.DEVEX_DRIVER !== "kubernetes") return;
    for (const message of kubernetesConfigProblems(c))
      ctx.addIssue({ code: "custom", message, path: ["DEVEX_DRIVER"] });
  });

export type CoreConfig = z.output<typeof coreConfigSchema>;
