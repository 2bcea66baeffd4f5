/**
 * The Devex browser client: a tiny router over its pages — sign-in, the dashboard (the user's
 * repls), API tokens (`/tokens`), device login (`/device`), the sign-in step of a private preview
 * (`/preview`) and the IDE for one repl (`/repls/<replId>`). Pages return a dispose function that ends their streams and timers when the
 * user navigates away.
 */
import "./styles.css";
import { Code } from "@connectrpc/connect";
import type { User } from "../../gen/devex/core/v1/auth_pb.js";
import { core, storedToken, webConfig } from "./api.js";
import { renderDashboard } from "./dashboard.js";
import { renderDevice } from "./device.js";
import { renderLogin } from "./login.js";
import { renderTokens } from "./tokens.js";
import { describeError, h, isCode } from "./ui.js";

export type Dispose = () => void;
export interface PageContext {
  root: HTMLElement;
  user: User;
  navigate(path: string): void;
}

const root = document.getElementById("app")!;
const AFTER_LOGIN = "devex.afterLogin";
let dispose: Dispose | undefined;
let user: User | undefined;

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void route();
}

async function route(): Promise<void> {
  dispose?.();
  dispose = undefined;
  root.replaceChildren();
  const path = location.pathname;
  const config = await webConfig();
  // Without a session cookie or a token nobody is signed in: skip the call (and its 401).
  if (!user && (config.session || storedToken.get())) {
    try {
      user = (await core.auth.getCurrentUser({})).user;
    } catch (err) {
      if (!isCode(err, Code.Unauthenticated)) {
        root.append(h("main", { class: "center" }, h("p", { role: "alert" }, describeError(err))));
        return;
      }
    }
  }
  if (!user) {
    // A device login's link (/device?code=…), or a private preview (/preview?repl=…, sent by core's
    // /auth/preview), opened before signing in: back to it once signed in.
    if (path === "/device" || path === "/preview") sessionStorage.setItem(AFTER_LOGIN, path + location.search);
    document.title = "Sign in · Devex";
    dispose = renderLogin(root, config);
    return;
  }
  const after = sessionStorage.getItem(AFTER_LOGIN);
  if (after) {
    sessionStorage.removeItem(AFTER_LOGIN);
    if (after !== path + location.search) return navigate(after, true);
  }
  if (path === "/preview") {
    // Core gives the signed-in owner's browser a token for the preview and sends it there.
    const back = new URLSearchParams(location.search);
    back.set("from", "app");
    location.replace(`/auth/preview?${back}`);
    return;
  }
  const ctx: PageContext = { root, user, navigate };
  const ide = /^\/repls\/([a-z0-9-]{1,63})\/?$/.exec(path);
  // The IDE (CodeMirror, xterm.js) is its own chunk: the dashboard and sign-in load without it.
  if (ide) dispose = (await import("./ide/ide.js")).renderIde(ctx, ide[1]);
  else if (path === "/tokens") dispose = renderTokens(ctx);
  else if (path === "/device") dispose = renderDevice(ctx);
  else {
    if (path !== "/") history.replaceState(null, "", "/");
    dispose = renderDashboard(ctx);
  }
}

// Internal links (data-link) navigate without reloading the page.
document.addEventListener("click", (ev) => {
  const a = (ev.target as Element | null)?.closest?.("a[data-link]") as HTMLAnchorElement | null;
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href") ?? "/");
});
window.addEventListener("popstate", () => void route());
void route();
