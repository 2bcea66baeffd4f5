/**
 * What core and the runner agree on about audit events: the token id of calls made without an API
 * token. Core puts it in runner tokens it issues for a browser session (claim `tid`), the runner
 * tells API tokens' calls from a browser's by it (it records file changes of API tokens only).
 */
export const SESSION_TOKEN_ID = "session";
