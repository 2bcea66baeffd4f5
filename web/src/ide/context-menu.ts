/** A keyboard-friendly context menu (role=menu): arrow keys, Home/End, Enter, Escape; focus returns. */
import { h } from "../ui.js";

export interface MenuItem {
  label: string;
  shortcut?: string;
  danger?: boolean;
  run(): void;
}

let open: { el: HTMLElement; close(): void } | undefined;

export function showContextMenu(x: number, y: number, items: MenuItem[], label: string): void {
  open?.close();
  const returnFocus = document.activeElement as HTMLElement | null;
  const menu = h("div", { class: "context-menu", role: "menu", "aria-label": label, tabindex: -1 });
  const buttons = items.map((item) => {
    const b = h(
      "button",
      { type: "button", role: "menuitem", class: item.danger ? "danger" : "", tabindex: -1 },
      h("span", {}, item.label),
      item.shortcut ? h("kbd", {}, item.shortcut) : null,
    );
    b.addEventListener("click", () => {
      close();
      item.run();
    });
    menu.append(b);
    return b;
  });
  const close = () => {
    menu.remove();
    document.removeEventListener("mousedown", outside, true);
    if (open?.el === menu) open = undefined;
    returnFocus?.focus();
  };
  const outside = (ev: MouseEvent) => {
    if (!menu.contains(ev.target as Node)) close();
  };
  menu.addEventListener("keydown", (ev) => {
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const move = (n: number) => buttons[(n + buttons.length) % buttons.length]?.focus();
    if (ev.key === "ArrowDown") move(i + 1);
    else if (ev.key === "ArrowUp") move(i - 1);
    else if (ev.key === "Home") move(0);
    else if (ev.key === "End") move(buttons.length - 1);
    else if (ev.key === "Escape" || ev.key === "Tab") close();
    else return;
    ev.preventDefault();
  });
  document.body.append(menu);
  const rect = menu.getBoundingClientRect();
  menu.style.left = `${Math.max(4, Math.min(x, innerWidth - rect.width - 4))}px`;
  menu.style.top = `${Math.max(4, Math.min(y, innerHeight - rect.height - 4))}px`;
  document.addEventListener("mousedown", outside, true);
  open = { el: menu, close };
  buttons[0]?.focus();
}
