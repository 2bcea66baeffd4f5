/**
 * The name of an atomic write's in-flight temporary file, `.<name>.devex-<12 hex>.tmp` beside its
 * target (the runner's writeAtomic). Such a file is never shown to clients and never persisted: it
 * is renamed over its target or removed within the one call that made it.
 */
export const atomicWriteTempName = (name: string, randomHex12: string) => `.${name}.devex-${randomHex12}.tmp`;

export function isAtomicWriteTemp(name: string): boolean {
  return /^\..+\.devex-[0-9a-f]{12}\.tmp$/.test(name);
}
