/** The bar at the top of every signed-in page: brand, page title slot, the user, their API tokens and sign-out. */
import { core, storedToken } from "./api.js";
import type { PageContext } from "./main.js";
import { h, toast } from "./ui.js";

export function topBar(ctx: PageContext, ...middle: (Node | string)[]): HTMLElement {
  const signOut = h("button", { type: "button", class: "btn ghost", "aria-label": "Sign out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      if (!storedToken.get()) await core.auth.logout({});
    } catch {
      toast("Could not end the session on the server.", "error");
    }
    storedToken.clear();
    location.assign("/");
  });
  const name = ctx.user.displayName || ctx.user.userId;
  return h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", "data-link": true, class: "brand", "aria-label": "Devex: all repls" }, "▸ devex"),
    h("div", { class: "topbar-middle" }, ...middle),
    h(
      "div",
      { class: "topbar-user" },
      ctx.user.avatarUrl ? h("img", { src: ctx.user.avatarUrl, alt: "", class: "avatar" }) : null,
      h("span", { class: "user-name" }, name),
      h("a", { href: "/tokens", "data-link": true, class: "btn ghost" }, "API tokens"),
      signOut,
    ),
  );
}
