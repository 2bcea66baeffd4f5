// Types for code-cache.mjs (plain JavaScript, copied into dist/ beside the bundles it runs).
/** The bundle wrapped as Node wraps CommonJS: call it with (exports, require, module, __filename, __dirname). */
type Wrapped = (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;

export declare function compileCached(
  file: string,
  digest?: string,
): { run: Wrapped; rejected: "damaged" | "refused" | undefined };
export declare function runCached(file: string | URL, digest?: string): void;
