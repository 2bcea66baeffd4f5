/**
 * The URL of a terminal's WebSocket bridge on a runner (services/runner/src/terminals/ws-bridge.ts),
 * built from the RunnerAccess StartRepl returned. The token never goes into it: clients offer it
 * as a subprotocol.
 */
import type { RunnerAccess } from "../../gen/devex/core/v1/repl_pb.js";
import { RunnerRoute } from "../contracts/runner-access.js";

export interface TerminalSocketOptions {
  /** Replay the terminal's screen and scrollback first (a reattach). */
  replay?: boolean;
  /** Resize the terminal to this before the replay is taken (both or neither). */
  cols?: number;
  rows?: number;
}

/** ws(s)://<runner>/<websocket_path>/<terminalId>?replay=1&cols=…&rows=… */
export function terminalSocketUrl(
  access: Pick<RunnerAccess, "url" | "websocketPath">,
  terminalId: string,
  options: TerminalSocketOptions = {},
): string {
  const base = access.url.replace(/^http/, "ws").replace(/\/+$/, "");
  const path = (access.websocketPath || RunnerRoute.terminalSocket).replace(/\/?$/, "/");
  const query = new URLSearchParams();
  if (options.replay) query.set("replay", "1");
  if (options.cols !== undefined && options.rows !== undefined) {
    query.set("cols", String(options.cols));
    query.set("rows", String(options.rows));
  }
  return `${base}${path}${encodeURIComponent(terminalId)}?${query}`;
}
