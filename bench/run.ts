/**
 * Benchmark dispatcher: `npm run bench -- <name>` imports bench/<name>.ts and runs its `run()`,
 * which writes its results to bench/results/<name>.json.
 */
const name = process.argv[2];
if (!name || !/^[a-z0-9-]+$/.test(name)) {
  console.error("usage: npm run bench -- <name>   (for example: npm run bench -- runner)");
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { run: (args: string[]) => Promise<void> };
await mod.run(process.argv.slice(3));
process.exit(0);
