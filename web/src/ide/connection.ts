/**
 * The connection indicator in the IDE's top bar: one word for the page's phase, the network, the
 * two server streams (WatchRepl, WatchFiles) and the terminals' sockets together.
 */
import { h } from "../ui.js";
import type { StreamState } from "./follow.js";
import type { TerminalPanel } from "./terminals.js";

export type IdePhase = "starting" | "ready" | "stopped" | "stopping";

export interface ConnectionInputs {
  online: boolean;
  phase: IdePhase;
  replStream: StreamState;
  filesStream: StreamState | "off";
  terminals: TerminalPanel["state"];
}

export class ConnectionIndicator {
  readonly el = h(
    "span",
    { class: "conn", id: "connection", role: "status", "aria-live": "polite" },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "conn-text" }, "Connecting…"),
  );

  show(inputs: ConnectionInputs) {
    const [text, cls] = describe(inputs);
    this.el.className = `conn ${cls}`;
    this.el.dataset.state = cls;
    this.el.querySelector(".conn-text")!.textContent = text;
  }
}

/** The indicator's text and its class (ok, busy, bad, off). */
function describe({ online, phase, replStream, filesStream, terminals }: ConnectionInputs): [string, string] {
  if (!online) return ["Offline — waiting for the network", "bad"];
  if (phase === "stopped") return ["Repl stopped", "off"];
  if (phase === "starting" || phase === "stopping") return ["Connecting…", "busy"];
  const streams = [replStream, filesStream, terminals];
  if (streams.includes("reconnecting")) return ["Reconnecting…", "busy"];
  if (streams.includes("connecting")) return ["Connecting…", "busy"];
  return ["Connected", "ok"];
}
