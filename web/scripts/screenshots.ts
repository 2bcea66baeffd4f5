/**
 * Screenshots for the README: `npx tsx web/scripts/screenshots.ts [outDir]` (default docs/) writes
 * dashboard.png and ide.png at 1280×800, and ide-narrow.png at 420×860, from the real embedded setup
 * in Debian's Chromium (same harness as the end-to-end tests).
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are the repl's JavaScript source
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { openBrowser, waitConnected, waitForTerminalText } from "../test/browser.js";

const out = process.argv[2] ?? fileURLToPath(new URL("../../docs", import.meta.url));
await mkdir(out, { recursive: true });
const s = await openBrowser();
try {
  const { page } = s;
  await page.goto(s.e.core.loginLink!);
  await page.getByRole("heading", { name: "Your repls" }).waitFor();
  for (const [template, name] of [
    ["python", "data-cleanup"],
    ["node", "hello-web"],
  ]) {
    await page.getByLabel("Template", { exact: true }).selectOption(template);
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByRole("button", { name: "Create repl" }).click();
    await page.locator(`li.repl-card[data-name="${name}"]`).waitFor();
  }
  const replId = (await page.locator('li.repl-card[data-name="hello-web"]').getAttribute("data-repl-id"))!;

  // Some project files, written through the shared clients like any other tool would.
  const core = coreClientsFor(s.e.core.url, { token: s.token });
  const { runner: access } = await core.repls.startRepl({ replId });
  const files = runnerClientsFor(access!.url, { token: access!.token }).files;
  const write = (path: string, text: string) =>
    files.writeFile({ path, content: Buffer.from(text), createParents: true });
  await write(
    "index.js",
    [
      'import { createServer } from "node:http";',
      'import { greet } from "./src/greet.js";',
      "",
      "const port = Number(process.env.PORT ?? 3000);",
      "",
      "createServer((req, res) => {",
      '  res.setHeader("content-type", "text/html; charset=utf-8");',
      '  res.end(`<main style="font-family: sans-serif; padding: 2rem">',
      '    <h1>${greet("Devex")}</h1>',
      "    <p>Served from the repl on port ${port}.</p>",
      "  </main>`);",
      "}).listen(port, () => console.log(`listening on ${port}`));",
      "",
    ].join("\n"),
  );
  await write("src/greet.js", "export const greet = (who) => `Hello, ${who}!`;\n");
  await write("README.md", "# hello-web\n\nA tiny web server.\n");

  await page.goto(`${s.e.core.url}/repls/${replId}`);
  await waitConnected(page);
  await page.getByRole("treeitem", { name: "src" }).click();
  await page.getByRole("treeitem", { name: "greet.js" }).waitFor();
  await page.getByRole("tab", { name: "index.js" }).click();
  await page.getByRole("button", { name: "▶ Run" }).click();
  await waitForTerminalText(page, /listening on 3000/);
  await page.getByRole("spinbutton", { name: "Port" }).fill("3000");
  await page.getByRole("button", { name: "Open", exact: true }).click();
  await page.frameLocator(".preview-frame").getByRole("heading", { name: "Hello, Devex!" }).waitFor();
  await page.locator(".cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("// edited in the browser");
  await page.screenshot({ path: join(out, "ide.png") });

  await page.setViewportSize({ width: 420, height: 860 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(out, "ide-narrow.png") });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.keyboard.press("Control+S");
  await page.locator('.editor-status[data-state="saved"]').waitFor();

  await page.getByRole("link", { name: "Back to all repls" }).click();
  await page.locator('li.repl-card[data-name="hello-web"][data-status="running"]').waitFor();
  await page.screenshot({ path: join(out, "dashboard.png") });
  if (s.errors.length) console.error("console errors:", s.errors);
  console.log(`screenshots written to ${out}`);
} finally {
  await s.close();
}
process.exit(0);
