/**
 * What core, the runner and every client must agree on about reaching a runner, written once:
 * token audiences, the scopes of a runner token, the runner's HTTP routes beside its RPCs, and the
 * terminal flow-control numbers. Core mints and routes with these, the runner checks with them,
 * web and CLI build URLs and acks with them.
 */

/** Token audiences (the `aud` claim). */
export const Audience = {
  /** A user's (or a preview link's) access to one repl's runner. */
  runner: "runner",
  /** Core's own calls to a runner's RunnerAdminService (Drain). */
  runnerAdmin: "runner-admin",
  /** A runner's calls to core's RunnerControlService (heartbeats, idle reports). */
  runnerControl: "runner-control",
} as const;

/** Scopes of a runner token: which runner services it opens. */
export const RunnerScope = {
  /** All of FileService. */
  files: "files",
  /** FileService's methods that change nothing (a read-only API token's, api-scopes.ts). */
  filesRead: "files:read",
  terminals: "terminals",
  exec: "exec",
  preview: "preview",
} as const;
export type RunnerScope = (typeof RunnerScope)[keyof typeof RunnerScope];

/** Everything a runner token opens (what api-scopes.ts gives a credential with every scope). */
export const USER_SCOPES: RunnerScope[] = [
  RunnerScope.files,
  RunnerScope.terminals,
  RunnerScope.exec,
  RunnerScope.preview,
];
/** A shared preview link's token: previews and nothing else (RunnerAccess.preview_token). */
export const PREVIEW_SCOPES: RunnerScope[] = [RunnerScope.preview];

/** The runner's routes beside its RPCs, relative to RunnerAccess.url. */
export const RunnerRoute = {
  /** `GET <url>/ws/terminals/<terminalId>` upgraded to the terminal WebSocket bridge (RunnerAccess.websocket_path). */
  terminalSocket: "/ws/terminals/",
  /** `<url>/preview/<port>/…`: a server in the repl, through the runner's preview proxy. */
  preview: "/preview/",
  /**
   * `GET` (download) or `PUT` (upload) `<url>/transfer/<ticket>`: a file or directory archive for a
   * browser, with a single-use ticket from FileService.CreateTransferTicket as the only credential.
   */
  transfer: "/transfer/",
} as const;

/** Terminal flow control, as in VS Code's pty host: clients ack output they have processed. */
export const TerminalFlow = {
  /** Unacknowledged output above which the runner pauses the PTY. */
  highWatermark: 100_000,
  /** ... and below which it resumes it. */
  lowWatermark: 5_000,
  /** A client acks at the latest after this much output (well below the high watermark). */
  ackBytes: 16 * 1024,
} as const;
