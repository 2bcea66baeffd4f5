#!/usr/bin/env node
// The `devex` command: runs the TypeScript CLI through tsx, as the other entry points do.
import { register } from "tsx/esm/api";

register();
await import("./src/main.ts");
