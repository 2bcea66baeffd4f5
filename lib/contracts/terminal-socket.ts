/**
 * The terminal WebSocket's subprotocols, which the runner's bridge and every client must spell
 * alike: a client offers TERMINAL_SUBPROTOCOL and its token as `bearer.<token>` (browsers cannot
 * set an Authorization header on a WebSocket); the runner echoes only TERMINAL_SUBPROTOCOL.
 */
export const TERMINAL_SUBPROTOCOL = "devex.terminal.v1";
export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";

/** The subprotocols a client offers to attach with `token`. */
export function terminalSocketProtocols(token: string): string[] {
  return [TERMINAL_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`];
}
