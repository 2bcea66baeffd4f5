// Types for scripts/build.mjs (plain JavaScript, so that it runs before anything is built).
type Entries = Record<string, string>;
export declare const targets: Record<string, Entries>;
/** Targets built as CommonJS bundles, `entries` of them run from V8's code cache made under `nodeFlags`. */
export interface CodeCache {
  nodeFlags: string[];
  entries: string[];
}
export declare const codeCached: Record<string, CodeCache>;
export declare function isStale(target: string, options?: { root?: string }): boolean;
export declare function buildAll(options?: {
  names?: string[];
  ifStale?: boolean;
  log?: (line: string) => void;
  root?: string;
  entries?: Record<string, Entries>;
  codeCache?: Record<string, CodeCache>;
}): Promise<void>;
