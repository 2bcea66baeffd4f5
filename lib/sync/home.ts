/**
 * What of a repl's home is persisted: everything (shell history, dotfiles, tool configuration,
 * global installs) but the package managers' and tools' caches below, which are rebuilt on demand
 * and would make every stop upload hundreds of megabytes. Both drivers persist homes with this rule.
 */

/** Paths relative to the home that are neither stored nor descended into. */
export const HOME_NOT_PERSISTED = [
  ".cache", // XDG cache: pip, corepack, node-gyp, …
  ".npm", // npm's cache and logs (_cacache, _logs, _npx)
  ".pnpm-store",
  ".local/share/pnpm/store",
  ".yarn/berry/cache",
  ".cargo/registry",
  ".cargo/git",
  "go/pkg/mod",
  ".m2/repository",
  ".gradle/caches",
  ".local/share/Trash",
];

const notPersisted = new Set(HOME_NOT_PERSISTED);

/** lib/sync's `exclude` for a home. */
export const excludeFromHome = (rel: string): boolean => notPersisted.has(rel);
