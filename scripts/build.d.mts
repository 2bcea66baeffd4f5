// Types for scripts/build.mjs (plain JavaScript, so that it runs before anything is built).
export declare const targets: Record<string, Record<string, string>>;
export declare function isStale(target: string): boolean;
export declare function buildTarget(target: string): Promise<{ bytes: number; inputs: number }>;
export declare function buildAll(options?: {
  names?: string[];
  ifStale?: boolean;
  log?: (line: string) => void;
}): Promise<void>;
