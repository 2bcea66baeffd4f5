// Types for scripts/build.mjs (plain JavaScript, so that it runs before anything is built).
type Entries = Record<string, string>;
export declare const targets: Record<string, Entries>;
export declare function isStale(target: string, options?: { root?: string }): boolean;
export declare function buildAll(options?: {
  names?: string[];
  ifStale?: boolean;
  log?: (line: string) => void;
  root?: string;
  entries?: Record<string, Entries>;
}): Promise<void>;
