/**
 * The state store: repl records, active runner sessions, API tokens, web sessions and locks.
 *
 * Concurrency rules (every implementation honours them, and test/state-contract.ts checks them):
 * - Each method is atomic on its own. Multi-key updates (a repl's record plus its owner's set, a
 *   quota check plus the insert) are applied all or nothing; a reader never sees half of one.
 * - `transitionRepl` is a compare-and-set on the status: it applies only when the current status is
 *   one of `from`, so two processes racing on one repl cannot both win.
 * - Locks expire (`ttlMs`) so a crashed holder cannot block a repl forever; `releaseLock` only
 *   releases the caller's own lock (compare-and-delete on the token).
 * - Expiring records (active sessions, web sessions, API tokens) read as absent once expired.
 * - Failures of the backend surface as DomainError "unavailable"; no backend message leaks.
 * - Calls take no AbortSignal: each is one short round trip (a command or a script), bounded by the
 *   implementation's per-command timeout (Redis: 5 s) instead.
 * Several core processes may share one Redis store; the embedded store belongs to one process.
 */

import type { VisibilityName } from "../../../../lib/contracts/preview-visibility.js";
import type { EgressPolicy } from "../../../../lib/egress/policy.js";

/** Lifecycle states, as stored. */
export type ReplState = "stopped" | "starting" | "running" | "stopping" | "deleting";

export interface ReplRecord {
  replId: string;
  name: string;
  template: string;
  owner: string;
  status: ReplState;
  /** Milliseconds since the epoch. */
  createTime: number;
  updateTime: number;
  /** 0 when never persisted. */
  persistTime: number;
  /** Empty when the last lifecycle operation succeeded. */
  lastError: string;
  /** The repl's egress policy; absent in records older than it: the template's or operator's default at read time. */
  egress?: EgressPolicy;
  /** Who may open its previews (repl/preview-sharing.ts); absent: private. */
  previewSharing?: PreviewSharing;
  /** Its environment variables by name (repl/environment.ts); absent: none. */
  env?: Record<string, StoredVariable>;
  /** The command the IDE's Run button runs (from its template); absent in older records: the template's. */
  runCommand?: string;
  /** The port the IDE's preview opens; absent or 0: none. */
  previewPort?: number;
  /** Its setup command, run once on its first start (repl/setup.ts); absent: none. */
  setup?: SetupRecord;
  /** The git repository it was created from (repl/clone.ts); absent: a template's files. */
  git?: GitRecord;
}

/** Why core deleted a repl on its own. */
export interface ReplTombstone {
  replId: string;
  owner: string;
  reason: string;
}

/** A repl's repository: what was asked for, and where the clone is. */
export interface GitRecord {
  url: string;
  /** Branch, tag or full commit id; "" for the default branch. */
  ref: string;
  fullHistory: boolean;
  status: "cloning" | "done";
  /** When the clone began (ms); one still "cloning" long past it was cut off (its core went away). */
  startTime: number;
  /** The commit checked out, once done. */
  commit?: string;
  /** Reached through core's git route with the owner's GitHub grant (repl/git-route.ts). */
  githubGrant?: boolean;
  /** Git in the repl may push to it through that route. */
  allowPush?: boolean;
}

/** Where a repl's setup command is: "pending" until a runner claims it, then "running", then how it ended. */
export interface SetupRecord {
  command: string;
  status: "pending" | "running" | "succeeded" | "failed";
  /** Set once ended; -1 for a signal or a runner that went away. */
  exitCode?: number;
  /** Why it failed without an exit code of its own. */
  message?: string;
}

/**
 * A template: the operator's (owner "", every user sees it) or a user's private one. Its files are
 * stored under `templates/<name>/` (repl/templates.ts).
 */
export interface TemplateRecord {
  name: string;
  title: string;
  description: string;
  language: string;
  runCommand: string;
  setupCommand: string;
  /** 0: none. */
  previewPort: number;
  /** Plain environment variables new repls start with (never secrets). */
  environment: Record<string, string>;
  /** Absent: the operator's default. */
  egress?: EgressPolicy;
  /** "" for the operator's; else the user whose private template it is. */
  owner: string;
  createTime: number;
}

/** An environment variable as stored: its value, or a secret's sealed value (never the plain one). */
export interface StoredVariable {
  value?: string;
  /** A secret, sealed by repl/secret-box.ts. */
  sealed?: string;
  updateTime: number;
}

/** As every client names it (lib/contracts/preview-visibility.ts). */
export type PreviewVisibility = VisibilityName;

/** Who may open a repl's previews: a default, per-port exceptions, and the epoch revoking older links. */
export interface PreviewSharing {
  visibility: PreviewVisibility;
  /** Port number (as a string key) → its own visibility. */
  ports: Record<string, PreviewVisibility>;
  /** Preview links minted before this epoch are revoked (raised when a preview is made private). */
  linkEpoch: number;
}

/** The runner currently serving a repl. Expires unless heartbeats refresh it. */
export interface ActiveSession {
  replId: string;
  runnerId: string;
  url: string;
  startTime: number;
}

export interface ApiTokenRecord {
  tokenId: string;
  userId: string;
  name: string;
  /** Hex SHA-256 of the secret; the secret itself is never stored. */
  hash: string;
  createTime: number;
  /** 0 when it never expires. */
  expireTime: number;
  lastUseTime: number;
  /** What it may do (lib/contracts/api-scopes.ts); absent or empty: everything its user may. */
  scopes?: string[];
}

export interface UserRecord {
  userId: string;
  displayName: string;
  avatarUrl: string;
  /** Their GitHub access token sealed under the secrets key (repl/github.ts); absent: no grant. */
  github?: string;
}

/** A browser session, stored under the SHA-256 of its cookie value. */
export interface WebSession {
  userId: string;
  createTime: number;
  expireTime: number;
}

/** A one-time login link's code (stored by its hash): the user it signs in, until it expires. */
export interface LoginCode {
  userId: string;
  expireTime: number;
}

/**
 * A device login (RFC 8628) by its user code: the device polls with a secret whose hash is kept
 * here; a signed-in user approves or denies it in the browser.
 */
export interface DeviceGrant {
  userCode: string;
  /** SHA-256 of the device code's secret. */
  deviceHash: string;
  /** What the device says it is ("devex CLI on laptop"). */
  clientName: string;
  createTime: number;
  expireTime: number;
  status: "pending" | "approved" | "denied";
  /** Who approved it. */
  userId?: string;
  /** The scopes the device asked for (its token gets them); absent: everything the user may. */
  scopes?: string[];
}

export type ReplPatch = Partial<
  Pick<
    ReplRecord,
    "status" | "updateTime" | "persistTime" | "lastError" | "egress" | "previewSharing" | "env" | "setup" | "git"
  >
>;

export interface StateStore extends AuditStore {
  /**
   * Other core processes may change this store (Redis): a watcher polls it for their changes. An
   * embedded store is this process's alone, so its changes all come through the repl's events.
   */
  readonly shared: boolean;
  /** Inserts a repl unless its owner already has `quota` repls; returns false when over quota. */
  createRepl(repl: ReplRecord, quota: number): Promise<boolean>;
  getRepl(replId: string): Promise<ReplRecord | undefined>;
  /** The user's repls, in no particular order. */
  listRepls(userId: string): Promise<ReplRecord[]>;
  countRepls(userId: string): Promise<number>;
  /**
   * Applies `patch` when the repl's status is one of `from`; returns the updated record, or
   * undefined when the repl is missing or in another state.
   */
  transitionRepl(replId: string, from: readonly ReplState[], patch: ReplPatch): Promise<ReplRecord | undefined>;
  /** Removes the repl's record, its owner's reference to it and its active session. */
  deleteRepl(replId: string, owner: string): Promise<void>;
  /**
   * Moves the repl's setup from "pending" to "running" and returns the record; undefined when it
   * has none or it is not pending (so of racing claimers exactly one gets it).
   */
  claimSetup(replId: string): Promise<ReplRecord | undefined>;
  /**
   * Remembers, for `ttlMs`, why core deleted a repl on its own (a failed clone), so that its owner
   * still learns why after the record is gone.
   */
  putReplTombstone(tombstone: ReplTombstone, ttlMs: number): Promise<void>;
  /** The repl's tombstone, unless it expired. */
  getReplTombstone(replId: string): Promise<ReplTombstone | undefined>;

  /**
   * Stores a template, replacing the one of that name if it has the same owner ("taken" when
   * another owner's has it). "over-quota" when the owner would have more than `quota` (0: no limit).
   */
  putTemplate(template: TemplateRecord, quota: number): Promise<"stored" | "over-quota" | "taken">;
  getTemplate(name: string): Promise<TemplateRecord | undefined>;
  /** The operator's templates and `owner`'s own ("" for only the operator's), in no particular order. */
  listTemplates(owner: string): Promise<TemplateRecord[]>;
  /** Deletes `owner`'s template of that name; false when there is none. */
  deleteTemplate(name: string, owner: string): Promise<boolean>;

  setActiveSession(session: ActiveSession, ttlMs: number): Promise<void>;
  getActiveSession(replId: string): Promise<ActiveSession | undefined>;
  /** Extends the session's TTL if it belongs to `runnerId`; returns false otherwise. */
  refreshActiveSession(replId: string, runnerId: string, ttlMs: number): Promise<boolean>;
  /** Deletes the session if it belongs to `runnerId` (or whichever it is, when runnerId is omitted). */
  deleteActiveSession(replId: string, runnerId?: string): Promise<void>;

  /** Takes the named lock for `ttlMs`; returns the holder token, or undefined when it is taken. */
  acquireLock(name: string, ttlMs: number): Promise<string | undefined>;
  /** Extends the lock to `ttlMs` from now if `token` still holds it; returns false when it was lost. */
  renewLock(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `token` still holds it. */
  releaseLock(name: string, token: string): Promise<void>;

  putApiToken(token: ApiTokenRecord): Promise<void>;
  getApiTokenByHash(hash: string): Promise<ApiTokenRecord | undefined>;
  listApiTokens(userId: string): Promise<ApiTokenRecord[]>;
  /** Deletes one of the user's tokens; returns false when the user has no such token. */
  deleteApiToken(userId: string, tokenId: string): Promise<boolean>;
  touchApiToken(hash: string, time: number): Promise<void>;

  putUser(user: UserRecord): Promise<void>;
  getUser(userId: string): Promise<UserRecord | undefined>;

  putWebSession(hash: string, session: WebSession): Promise<void>;
  getWebSession(hash: string): Promise<WebSession | undefined>;
  deleteWebSession(hash: string): Promise<void>;

  /**
   * A value every core sharing the store agrees on: the one stored under `name`, storing `value`
   * there first when there is none (such as the sealed check that all cores have the same secrets key).
   */
  firstSetting(name: string, value: string): Promise<string>;

  putLoginCode(hash: string, code: LoginCode): Promise<void>;
  /** The code's record, deleted as it is read: one use, across every core sharing the store. */
  takeLoginCode(hash: string): Promise<LoginCode | undefined>;

  putDeviceGrant(grant: DeviceGrant): Promise<void>;
  /** The grant, unless it expired. */
  getDeviceGrant(userCode: string): Promise<DeviceGrant | undefined>;
  /** Approves or denies a pending, unexpired grant; false when it was not pending (decided, gone). */
  decideDeviceGrant(
    userCode: string,
    decision: { status: "approved"; userId: string } | { status: "denied" },
  ): Promise<boolean>;
  /** Deletes the grant; true for the one caller that deleted it (so a token is issued once). */
  deleteDeviceGrant(userCode: string): Promise<boolean>;

  close(): Promise<void>;
}

// ---- The audit log (services/core/src/audit/) ----

/** One recorded call, as stored: no secrets, only what services/core/src/audit/ puts in. */
export interface AuditRecord {
  /** Milliseconds since the epoch: when the call was made. */
  time: number;
  userId: string;
  /** An API token id, or the kind of credential ("session", "link", "github", "device", "operator"). */
  tokenId: string;
  clientAddress: string;
  /** "<package>.<Service>/<Method>", or "auth/<step>" for sign-in routes. */
  rpc: string;
  /** Empty when the call names no repl. */
  replId: string;
  /** "ok" or a Connect code's name ("not_found"). */
  outcome: string;
  message: string;
  details: Record<string, string>;
}

/** An audit record with the id the store gave it: "<ms>-<seq>", ordered as recorded. */
export interface StoredAuditEvent extends AuditRecord {
  eventId: string;
}

/** How much of the audit log is kept; the oldest events go first. */
export interface AuditRetention {
  /** Events older than this (by when they were recorded) are dropped; 0: no age limit (the counts alone bound the log). */
  maxAgeMs: number;
  /** At most this many events in all (the operator's view). */
  maxEvents: number;
  /** At most this many per user. */
  maxUserEvents: number;
}

/** Which events to list: newest first, recorded in [startTime, endTime), older than `before`. */
export interface AuditQuery {
  /** One user's events; absent: everyone's. */
  userId?: string;
  startTime?: number;
  endTime?: number;
  /** An event id: list only events recorded before it (the paging cursor). */
  before?: string;
  limit: number;
}

/**
 * The audit log's storage: append-only, trimmed by retention as it grows. Appends of one call land
 * together and in order; ids grow in the order events were appended (Redis stream ids on Redis).
 */
export interface AuditStore {
  /** Appends the events in order, then drops what `retention` no longer keeps. */
  appendAuditEvents(events: readonly AuditRecord[], retention: AuditRetention): Promise<void>;
  /** The matching events, newest first, at most `limit`. */
  listAuditEvents(query: AuditQuery): Promise<StoredAuditEvent[]>;
}
