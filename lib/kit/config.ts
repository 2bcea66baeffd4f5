/**
 * Configuration from the environment, validated with zod/mini (./zod.ts). `loadConfig` reports every
 * bad or missing variable at once, with the variable names, instead of failing on the first.
 */
import * as z from "./zod.js";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/**
 * A service's configuration from `load`, or what is wrong with it (a ConfigError) on stderr and
 * exit code 2: the message names each variable, and a stack trace would only hide it.
 */
export function configOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}

/** Parses `env` with a zod object schema whose keys are environment variable names. */
export function loadConfig<S extends z.ZodMiniObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    input[key] = value === "" ? undefined : value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.join(".") || "(config)";
    if (env[key] !== undefined && env[key] !== "") return `${key}: ${issue.message}`;
    return issue.code === "invalid_type" ? `${key}: required (not set)` : `${key}: ${issue.message} (not set)`;
  });
  throw new ConfigError(problems);
}

/** A whole number with `checks`; text that is no number at all says so (zod's own message says "NaN"). */
const integer = (...checks: z.core.$ZodCheck<number>[]) =>
  z.coerce
    .number({ error: (issue) => (Number.isNaN(issue.input) ? "must be a whole number" : undefined) })
    .check(z.int({ error: "must be a whole number" }), ...checks);

/** Reusable field types for environment variables. */
export const env = {
  integer,
  port: (fallback: number) => z._default(integer(z.minimum(0), z.maximum(65535)), fallback),
  bool: (fallback: boolean) =>
    z.pipe(
      z._default(z.enum(["true", "false", "1", "0", "yes", "no"]), fallback ? "true" : "false"),
      z.transform((v) => v === "true" || v === "1" || v === "yes"),
    ),
  /** A duration such as "250ms", "30s", "4m", "1h"; a bare number is milliseconds. Yields milliseconds. */
  duration: (fallback: string) =>
    z.pipe(
      z._default(z.string(), fallback),
      z.transform((v: string, ctx) => {
        const ms = parseDuration(v);
        if (ms === undefined) {
          ctx.issues.push({
            code: "custom",
            message: `"${v}" is not a duration such as 500ms, 30s, 4m or 1h`,
            input: v,
          });
          return z.NEVER;
        }
        return ms;
      }),
    ),
  url: () => z.url(),
  logLevel: () => z._default(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), "info"),
};

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * units[m[2] ?? "ms"]);
}
