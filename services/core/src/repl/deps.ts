import type { BlobStore } from "../../../../lib/blob/store.js";
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { TokenSigner } from "../../../../lib/kit/tokens.js";
import type { CheckpointSettings } from "../checkpoints/retention.js";
import type { Driver } from "../driver/driver.js";
import type { StateStore } from "../state/store.js";
import type { CloneLimits } from "./clone.js";
import type { ReplEvents } from "./events.js";
import type { GitHubHosts } from "./github.js";
import type { SecretBox } from "./secret-box.js";
import type { TemplateCatalog } from "./templates.js";

/** Everything the lifecycle operations need; built once in createCore. */
export interface ReplDeps {
  state: StateStore;
  blobs: BlobStore;
  driver: Driver;
  signer: TokenSigner;
  /** Seals and opens repls' secrets (secret-box.ts). */
  secrets: SecretBox;
  templates: TemplateCatalog;
  events: ReplEvents;
  log: Logger;
  /** The egress policy of repls whose template names none (DEVEX_EGRESS_DEFAULT). */
  egressDefault: EgressPolicy;
  /** Ranges no policy opens (EgressRanges.neverCidrs()), shown on every repl. */
  egressDeniedCidrs: readonly string[];
  /** Repls per user. */
  quota: number;
  /** Private templates per user (DEVEX_TEMPLATE_QUOTA). */
  templateQuota: number;
  /** Checkpoint retention and automatic checkpoints (DEVEX_CHECKPOINT_*). */
  checkpoints: CheckpointSettings;
  /** Repls from git repositories (DEVEX_GIT_*). */
  clone: CloneLimits & {
    /** http:// URLs as well as https:// (an operator's own git server on a private network). */
    allowHttp: boolean;
  };
  /** GitHub's hosts, when users sign in with GitHub and core keeps their grants (repl/github.ts). */
  github?: GitHubHosts;
  /** Where runners reach RunnerControlService. */
  coreUrl: string;
  /** Core's URL as browsers reach it (a private preview sends a browser there to sign in). */
  publicUrl: string;
  /** Core's preview origin, when it serves one: previews are linked there instead of below the runner's URL. */
  previewUrl?: string;
  /** Lifetime of an active session without heartbeats. */
  sessionTtlMs: number;
  /** Lifetime of the runner token StartRepl returns. */
  runnerTokenTtlSeconds: number;
  /** How long an operation waits for another one on the same repl. */
  lockWaitMs: number;
  /** How long a repl lock lasts if its holder dies. */
  lockTtlMs: number;
  /**
   * Upper bound of one driver operation (start, stop). Driver calls run on their own deadline, not
   * the caller's signal: a client that hangs up must not abort a start other callers wait for, or
   * leave a stop persisted but not torn down.
   */
  operationTimeoutMs: number;
}
