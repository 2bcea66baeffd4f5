#!/usr/bin/env node
// The `devex` command in a checkout: the bundled CLI (dist/cli, which is also installable on its own),
// rebuilt first when the CLI's sources changed since it was built.
const { buildAll } = await import("../scripts/build.mjs");
await buildAll({ names: ["cli"], ifStale: true });
await import("../dist/cli/devex.mjs");
