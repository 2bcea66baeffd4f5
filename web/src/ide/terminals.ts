/**
 * Terminals: xterm.js views attached through the runner's WebSocket bridge (binary frames = bytes,
 * text frames = protobuf-JSON AttachRequest/AttachResponse). Every (re)attach asks for the replay
 * (`replay=1`: the runner's mirror of the screen and scrollback) and redraws from it, so a reload or
 * a dropped network shows what was there. What xterm emits before it has processed the whole replay
 * (its answers to anything in it) is dropped, never typed into the shell.
 * Size: a tab is shown and fitted to the pane before its terminal is created or attached, and the
 * size goes with the request, so a shell starts at the pane's size. Later resizes follow the panel
 * (fit addon), debounced.
 * Flow control: live output bytes are acknowledged once xterm has processed them (replayed bytes
 * are not; the runner ignores those).
 */
import "@xterm/xterm/css/xterm.css";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal as XTerm } from "@xterm/xterm";
import {
  AttachRequestSchema,
  AttachResponseSchema,
  type Terminal as TerminalInfo,
  type TerminalSize,
} from "../../../gen/devex/runner/v1/terminal_pb.js";
import { TerminalFlow } from "../../../lib/contracts/runner-access.js";
import { terminalSocketProtocols } from "../../../lib/contracts/terminal-socket.js";
import type { RunnerSession } from "../api.js";
import { describeError, h, isCode, toast } from "../ui.js";

export type LinkState = "connecting" | "connected" | "reconnecting" | "exited" | "closed";

const encoder = new TextEncoder();

type Size = Pick<TerminalSize, "cols" | "rows">;

class TerminalTab {
  readonly tab: HTMLElement;
  readonly panel: HTMLElement;
  readonly term: XTerm;
  private readonly fit = new FitAddon();
  /** The runner's terminal, once created (a new tab is fitted first, then its terminal created). */
  info: TerminalInfo | undefined;
  private ws: WebSocket | undefined;
  private opened = false;
  private replayLeft = 0;
  /** False from `attached` until xterm has processed the replay. */
  private inputOpen = false;
  private unacked = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private resizeTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempts = 0;
  state: LinkState = "connecting";
  private disposed = false;

  constructor(
    readonly name: string,
    private readonly session: RunnerSession,
    private readonly onState: () => void,
    private readonly onGone: (t: TerminalTab) => void,
    onSelect: (t: TerminalTab) => void,
    onClose: (t: TerminalTab) => void,
  ) {
    const close = h(
      "span",
      { class: "tab-close", role: "button", "aria-label": `Close terminal ${name}`, title: "Close" },
      "×",
    );
    this.tab = h(
      "div",
      { role: "tab", class: "term-tab", tabindex: -1 },
      h("span", { class: "term-dot", "aria-hidden": "true" }),
      h("span", { class: "tab-name" }, name),
      close,
    );
    this.tab.addEventListener("click", (ev) => (ev.target === close ? onClose(this) : onSelect(this)));
    this.panel = h("div", { role: "tabpanel", class: "term-panel", hidden: true });
    this.term = new XTerm({
      cursorBlink: true,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
      fontSize: 13,
      scrollback: 5000,
      theme: { background: "#0d1117", foreground: "#d6deeb", cursor: "#79c0ff", selectionBackground: "#264f78" },
      screenReaderMode: false,
    });
    this.term.loadAddon(this.fit);
    // Ctrl/Cmd-S saves the editor (the page handles it) instead of sending XOFF to the shell.
    this.term.attachCustomKeyEventHandler(
      (ev) => !((ev.ctrlKey || ev.metaKey) && !ev.shiftKey && ev.key.toLowerCase() === "s"),
    );
    this.term.onData((d) => this.input(encoder.encode(d)));
    this.term.onBinary((d) => this.input(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => {
      this.showSize();
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => this.sendFrame({ frame: { case: "resize", value: { cols, rows } } }), 80);
    });
  }

  /** Binds the tab to its terminal and attaches at `size` (the pane's, for a tab not shown yet). */
  attach(info: TerminalInfo, size: Size) {
    const id = info.terminalId;
    this.info = info;
    this.tab.id = `term-tab-${id}`;
    this.tab.dataset.terminalId = id;
    this.tab.setAttribute("aria-controls", `term-panel-${id}`);
    this.panel.id = `term-panel-${id}`;
    this.panel.setAttribute("aria-labelledby", this.tab.id);
    if (size.cols !== this.term.cols || size.rows !== this.term.rows) this.term.resize(size.cols, size.rows);
    this.connect();
  }

  /** The size xterm has now (fitted to the pane once shown). */
  get size(): Size {
    return { cols: this.term.cols, rows: this.term.rows };
  }

  show(on: boolean) {
    this.panel.hidden = !on;
    this.tab.setAttribute("aria-selected", String(on));
    this.tab.tabIndex = on ? 0 : -1;
    if (!on) return;
    // Opened once visible: xterm measures its cells when it opens, and fitting needs them.
    if (!this.opened && this.panel.isConnected) {
      this.opened = true;
      this.term.open(this.panel);
      this.term.textarea?.setAttribute("aria-label", `Terminal ${this.name}`);
    }
    this.fitNow();
    this.showSize();
  }

  fitNow() {
    if (this.panel.hidden || !this.panel.isConnected) return;
    try {
      this.fit.fit();
    } catch {}
  }

  focus() {
    this.term.focus();
  }

  connect() {
    if (this.disposed || !this.info) return;
    clearTimeout(this.retryTimer);
    this.setState(this.attempts ? "reconnecting" : "connecting");
    this.fitNow();
    const info = this.info;
    const url = this.session.terminalUrl(info.terminalId, {
      replay: true,
      cols: this.term.cols,
      rows: this.term.rows,
    });
    const ws = new WebSocket(url, terminalSocketProtocols(this.session.token));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let attached = false;
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const msg = fromJsonString(AttachResponseSchema, ev.data);
        if (msg.frame.case === "attached") {
          attached = true;
          this.attempts = 0;
          this.replayLeft = Number(msg.frame.value.replayBytes);
          this.inputOpen = this.replayLeft === 0;
          this.unacked = 0;
          // The replay redraws everything the terminal showed: start from a clean screen.
          this.term.reset();
          this.setState("connected");
          // A resize made while connecting was not sent: send the size xterm has now.
          const size = msg.frame.value.terminal?.size;
          if (size && (size.cols !== this.term.cols || size.rows !== this.term.rows)) {
            this.sendFrame({ frame: { case: "resize", value: this.size } });
          }
        } else if (msg.frame.case === "exit") {
          const e = msg.frame.value;
          this.term.write(
            `\r\n\x1b[2m[process exited${e.signal ? ` by ${e.signal}` : ` with code ${e.exitCode}`}]\x1b[0m\r\n`,
          );
          this.setState("exited");
        }
        return;
      }
      const data = new Uint8Array(ev.data as ArrayBuffer);
      const replayed = Math.min(this.replayLeft, data.length);
      this.replayLeft -= replayed;
      const live = data.length - replayed;
      const replayEnds = replayed > 0 && this.replayLeft === 0;
      this.term.write(data, () => {
        if (replayEnds && this.ws === ws) this.inputOpen = true;
        if (live > 0) this.ack(live);
      });
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      clearTimeout(this.ackTimer);
      if (this.disposed || this.state === "exited") return;
      if (ev.code === 1000 || ev.code === 4404) {
        this.setState("exited");
        return;
      }
      void this.retry(info, attached);
    };
  }

  private async retry(info: TerminalInfo, wasAttached: boolean) {
    this.attempts++;
    this.setState("reconnecting");
    // A failed handshake tells the browser nothing: ask the runner whether the terminal still exists.
    if (!wasAttached && this.attempts > 1) {
      try {
        const { terminals } = await this.session.clients.terminals.listTerminals({});
        if (!terminals.some((t) => t.terminalId === info.terminalId)) {
          this.setState("closed");
          this.onGone(this);
          return;
        }
        if (this.attempts > 3) await this.session.refresh();
      } catch (err) {
        if (isCode(err, Code.Unauthenticated)) await this.session.refresh().catch(() => {});
      }
    }
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempts, 5));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Skips the backoff wait: reconnects now (used when the browser reports the network is back). */
  kick() {
    if (this.state === "reconnecting") {
      clearTimeout(this.retryTimer);
      this.connect();
    }
  }

  private ack(n: number) {
    this.unacked += n;
    if (this.unacked >= TerminalFlow.ackBytes) this.flushAck();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAck(), 20);
  }

  private flushAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.unacked) return;
    this.sendFrame({ frame: { case: "ack", value: BigInt(this.unacked) } });
    this.unacked = 0;
  }

  private sendFrame(msg: Parameters<typeof create<typeof AttachRequestSchema>>[1]) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(toJsonString(AttachRequestSchema, create(AttachRequestSchema, msg)));
  }

  send(bytes: Uint8Array) {
    if (this.ws?.readyState === WebSocket.OPEN && this.state === "connected") this.ws.send(bytes);
  }

  /** What xterm emits: typed keys, and its answers to queries, which must not answer the replay. */
  private input(bytes: Uint8Array) {
    if (this.inputOpen) this.send(bytes);
  }

  /** The size in cells, for tests and tools that read the page. */
  private showSize() {
    this.panel.dataset.cols = String(this.term.cols);
    this.panel.dataset.rows = String(this.term.rows);
  }

  private setState(s: LinkState) {
    this.state = s;
    this.tab.dataset.state = s;
    this.onState();
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    clearTimeout(this.resizeTimer);
    this.ws?.close(1000);
    this.term.dispose();
    this.tab.remove();
    this.panel.remove();
  }
}

export class TerminalPanel {
  readonly el: HTMLElement;
  private readonly tabs: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly list: TerminalTab[] = [];
  private active: TerminalTab | undefined;
  private readonly observer: ResizeObserver;

  /** `headExtra`: shown in the panel's head, after the tabs (the setup command's state). */
  constructor(
    private readonly session: RunnerSession,
    private readonly onState: () => void,
    headExtra?: HTMLElement,
  ) {
    this.tabs = h("div", { role: "tablist", class: "term-tabs", "aria-label": "Terminals" });
    const add = h(
      "button",
      { type: "button", class: "icon-btn", "aria-label": "New terminal", title: "New terminal (Ctrl+Shift+`)" },
      "+",
    );
    add.addEventListener("click", () => void this.create());
    this.panels = h("div", { class: "term-panels" });
    this.el = h(
      "section",
      { class: "terminals", "aria-label": "Terminals" },
      h("div", { class: "panel-head" }, h("h2", {}, "Terminal"), this.tabs, headExtra, add),
      this.panels,
    );
    this.tabs.addEventListener("keydown", (ev) => {
      const i = this.list.indexOf(this.active!);
      if (ev.key === "ArrowRight") this.select(this.list[(i + 1) % this.list.length]);
      else if (ev.key === "ArrowLeft") this.select(this.list[(i - 1 + this.list.length) % this.list.length]);
      else return;
      ev.preventDefault();
      this.active?.tab.focus();
    });
    this.observer = new ResizeObserver(() => this.active?.fitNow());
    this.observer.observe(this.panels);
  }

  /** The connection state of all terminals together, for the IDE's indicator. */
  get state(): LinkState | "none" {
    const live = this.list.filter((t) => t.state !== "exited" && t.state !== "closed");
    if (!live.length) return "none";
    if (live.some((t) => t.state === "reconnecting")) return "reconnecting";
    if (live.some((t) => t.state === "connecting")) return "connecting";
    return "connected";
  }

  get current(): TerminalTab | undefined {
    return this.active;
  }

  /** Attaches to the repl's running terminals (at the pane's size), or opens a first one. */
  async load(): Promise<void> {
    const { terminals } = await this.session.clients.terminals.listTerminals({});
    const running = terminals.filter((t) => !t.exited);
    if (!running.length) return this.create();
    const tabs = running.map((info) => this.add(info.name || info.terminalId));
    this.select(tabs[0]);
    for (const [i, t] of tabs.entries()) t.attach(running[i], tabs[0].size);
  }

  /** Opens a tab, fits it to the pane, then creates its terminal at that size. */
  async create(): Promise<void> {
    const t = this.add(`Shell ${this.list.length + 1}`);
    this.select(t);
    try {
      const { terminal } = await this.session.clients.terminals.createTerminal({ name: t.name, size: t.size });
      if (!terminal) throw new Error("the runner returned no terminal");
      if (!this.list.includes(t)) {
        // Closed while it was being created.
        await this.session.clients.terminals.closeTerminal({ terminalId: terminal.terminalId });
        return;
      }
      t.attach(terminal, t.size);
      t.focus();
    } catch (err) {
      this.remove(t);
      toast(`Could not open a terminal: ${describeError(err)}`, "error");
    }
  }

  private add(name: string): TerminalTab {
    const t = new TerminalTab(
      name,
      this.session,
      this.onState,
      (gone) => this.remove(gone),
      (sel) => {
        this.select(sel);
        sel.focus();
      },
      (c) => void this.closeTerminal(c),
    );
    this.list.push(t);
    this.tabs.append(t.tab);
    this.panels.append(t.panel);
    return t;
  }

  select(t: TerminalTab | undefined): void {
    if (!t) return;
    this.active = t;
    for (const x of this.list) x.show(x === t);
  }

  private async closeTerminal(t: TerminalTab) {
    try {
      if (t.info) await this.session.clients.terminals.closeTerminal({ terminalId: t.info.terminalId });
    } catch (err) {
      if (!isCode(err, Code.NotFound)) toast(`Could not close the terminal: ${describeError(err)}`, "error");
    }
    this.remove(t);
  }

  private remove(t: TerminalTab) {
    const i = this.list.indexOf(t);
    if (i < 0) return;
    this.list.splice(i, 1);
    t.dispose();
    if (this.active === t) this.select(this.list[Math.min(i, this.list.length - 1)]);
    this.onState();
  }

  /** Types a command line into the active terminal (the Run button). */
  run(command: string): void {
    const t = this.active;
    if (!t) return;
    t.send(encoder.encode(`${command}\r`));
    t.focus();
  }

  reconnectNow(): void {
    for (const t of this.list) t.kick();
  }

  dispose(): void {
    this.observer.disconnect();
    for (const t of this.list) t.dispose();
    this.list.length = 0;
  }
}
