// Types for scripts/build.mjs (plain JavaScript, so that it runs before anything is built).
type Entries = Record<string, string>;
export declare const targets: Record<string, Entries>;
/** Targets run from V8's code cache, with the Node flags their processes run with. */
export declare const codeCached: Record<string, string[]>;
export declare function isStale(target: string, options?: { root?: string }): boolean;
export declare function buildAll(options?: {
  names?: string[];
  ifStale?: boolean;
  log?: (line: string) => void;
  root?: string;
  entries?: Record<string, Entries>;
  codeCache?: Record<string, string[]>;
}): Promise<void>;
