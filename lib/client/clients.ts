/**
 * The one client layer. The web client, the CLI, the MCP server and the end-to-end tests reach core
 * and runners through these typed Connect clients; nothing re-implements a call. Give it any
 * Transport: connect-node's (see node.ts) in Node, connect-web's in the browser.
 */
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { AdminService } from "../../gen/devex/core/v1/admin_pb.js";
import { AuditService } from "../../gen/devex/core/v1/audit_pb.js";
import { AuthService } from "../../gen/devex/core/v1/auth_pb.js";
import { CheckpointService } from "../../gen/devex/core/v1/checkpoint_pb.js";
import { ReplService } from "../../gen/devex/core/v1/repl_pb.js";
import { FileService } from "../../gen/devex/runner/v1/file_pb.js";
import { ProcessService } from "../../gen/devex/runner/v1/process_pb.js";
import { StatusService } from "../../gen/devex/runner/v1/status_pb.js";
import { TerminalService } from "../../gen/devex/runner/v1/terminal_pb.js";
import { RunnerAdminService, RunnerControlService } from "../../gen/devex/runnercontrol/v1/runner_control_pb.js";

export interface CoreClients {
  repls: Client<typeof ReplService>;
  checkpoints: Client<typeof CheckpointService>;
  auth: Client<typeof AuthService>;
  audit: Client<typeof AuditService>;
}

export interface RunnerClients {
  files: Client<typeof FileService>;
  terminals: Client<typeof TerminalService>;
  processes: Client<typeof ProcessService>;
  status: Client<typeof StatusService>;
}

export function createCoreClients(transport: Transport): CoreClients {
  return {
    repls: createClient(ReplService, transport),
    checkpoints: createClient(CheckpointService, transport),
    auth: createClient(AuthService, transport),
    audit: createClient(AuditService, transport),
  };
}

export function createRunnerClients(transport: Transport): RunnerClients {
  return {
    files: createClient(FileService, transport),
    terminals: createClient(TerminalService, transport),
    processes: createClient(ProcessService, transport),
    status: createClient(StatusService, transport),
  };
}

/** The operator's calls to core, on its admin socket (core's CLI). */
export type CoreAdminClient = Client<typeof AdminService>;

export function createCoreAdminClient(transport: Transport): CoreAdminClient {
  return createClient(AdminService, transport);
}

/** Core's calls to a runner (Drain), with a token of audience runner-admin. */
export type RunnerAdminClient = Client<typeof RunnerAdminService>;
/** A runner's calls to core (heartbeats, idle reports), with its runner-control token. */
export type RunnerControlClient = Client<typeof RunnerControlService>;

export function createRunnerAdminClient(transport: Transport): RunnerAdminClient {
  return createClient(RunnerAdminService, transport);
}

export function createRunnerControlClient(transport: Transport): RunnerControlClient {
  return createClient(RunnerControlService, transport);
}

/**
 * Sends "Authorization: Bearer <token>". The token is read on every call, so a caller can refresh
 * it (runner tokens are short-lived) without rebuilding clients.
 */
export function bearerAuth(token: string | (() => string)): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${typeof token === "function" ? token() : token}`);
    return next(req);
  };
}
