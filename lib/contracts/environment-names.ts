/**
 * What a repl environment variable's name may be, as the API takes it (the proto's pattern), so
 * that the CLI and the web client refuse a bad one before asking, and the names the repl sets
 * itself (core refuses them, saying why).
 */

/** A shell variable name: a letter or underscore, then letters, digits or underscores; at most 128. */
const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const isEnvironmentName = (name: string): boolean => environmentNamePattern.test(name);

/** Names the repl sets itself, for the shell and for Devex's own use (and every DEVEX_* name). */
const RESERVED = new Set(["HOME", "USER", "LOGNAME", "HOSTNAME", "PWD", "OLDPWD", "SHLVL", "_"]);

export const isReservedEnvironmentName = (name: string): boolean => RESERVED.has(name) || name.startsWith("DEVEX_");

/** Per repl: how many variables, and their names' and values' bytes in all (one value: at most 32 KiB, the proto's rule). */
export const ENV_LIMITS = { count: 100, totalBytes: 128 * 1024 } as const;
