/**
 * Test fixture (remove.test.ts): empties the directory given as the argument with emptyDirectory,
 * as whatever user runs it, and prints what is left in it.
 */
import { readdirSync } from "node:fs";
import { emptyDirectory, openDirectory } from "./fsat.js";

const dir = process.argv[2]!;
const handle = await openDirectory(dir);
try {
  await emptyDirectory(handle.fd);
} finally {
  await handle.close();
}
process.stdout.write(JSON.stringify(readdirSync(dir)));
