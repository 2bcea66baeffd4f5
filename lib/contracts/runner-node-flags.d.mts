// Types for runner-node-flags.mjs (plain JavaScript, so that scripts/build.mjs reads it before anything is built).
export declare const runnerNodeFlags: string[];
