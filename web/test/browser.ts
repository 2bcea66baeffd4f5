/**
 * Harness for the web client's end-to-end tests: builds the client with Vite (once per process),
 * starts the embedded setup in-process with core serving the build (services/core/test/embedded.ts),
 * and opens Debian's Chromium through playwright-core with a fresh profile. Console errors and page
 * errors are collected so tests can assert there were none.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { issueApiToken } from "../../services/core/src/auth/secrets.js";
import { createWebStatic } from "../../services/core/src/web-static.js";
import { type Embedded, type EmbeddedOptions, startEmbedded } from "../../services/core/test/embedded.js";

export const webDir = fileURLToPath(new URL("..", import.meta.url));
export const distDir = join(webDir, "dist");

let built: Promise<void> | undefined;

/** Builds web/dist with Vite's API (once per test process). */
export function buildWeb(): Promise<void> {
  built ??= (async () => {
    const { build } = await import("vite");
    await build({ configFile: join(webDir, "vite.config.ts"), logLevel: "error" });
  })();
  return built;
}

export interface BrowserSetup {
  e: Embedded;
  context: BrowserContext;
  page: Page;
  /** Console errors, failed requests the page reported and uncaught page errors. */
  errors: string[];
  /** A Node-side API token for the embedded user, to check state through the shared clients. */
  token: string;
  close(): Promise<void>;
}

/** Debian's Chromium with a profile of its own (a fresh folder: a browser no one signed in on). */
export function launchChromium(profile: string, viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** `embedded`: more of the embedded setup's options (a test that clones from loopback shares the host network). */
export async function openBrowser(
  viewport = { width: 1280, height: 800 },
  embedded: Omit<EmbeddedOptions, "web"> = {},
): Promise<BrowserSetup> {
  await buildWeb();
  // The default sandbox: the preview proxy reaches a repl's servers in the repl's own network.
  // The page offers GitHub sign-in where core has it configured, as main.ts tells it.
  const github = Boolean(embedded.config?.GITHUB_CLIENT_ID && embedded.config?.GITHUB_CLIENT_SECRET);
  const e = await startEmbedded({ ...embedded, web: createWebStatic({ dir: distDir, config: { github } }) });
  const profile = await mkdtemp(join(tmpdir(), "devex-chromium-"));
  let context: BrowserContext | undefined;
  try {
    context = await launchChromium(profile, viewport);
  } catch (err) {
    await e.close();
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  const { secret } = await issueApiToken(e.state, "local", "web-test");
  return {
    e,
    context,
    page,
    errors,
    token: secret,
    async close() {
      await context?.close().catch(() => {});
      await e.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The visible text of the active xterm (DOM renderer rows). */
export async function terminalText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const panel = document.querySelector(".term-panel:not([hidden]) .xterm-rows");
    return panel ? [...panel.children].map((r) => r.textContent ?? "").join("\n") : "";
  });
}

export async function waitForTerminalText(page: Page, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = await terminalText(page);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`terminal never showed ${re}; it shows:\n${text}`);
}

/** Waits for the IDE's connection indicator to read Connected; on timeout says what it showed. */
export async function waitConnected(page: Page, timeoutMs = 30_000): Promise<void> {
  try {
    await page.locator('#connection[data-state="ok"]').waitFor({ timeout: timeoutMs });
  } catch (err) {
    const state = await page
      .evaluate(() => ({
        url: location.href,
        connection: document.querySelector("#connection")?.textContent,
        overlay: document.querySelector(".overlay:not([hidden])")?.textContent,
        terminals: [...document.querySelectorAll(".term-tab")].map((t) => (t as HTMLElement).dataset.state),
      }))
      .catch(() => undefined);
    throw new Error(`the IDE never connected: ${JSON.stringify(state)} (${(err as Error).message})`);
  }
}
