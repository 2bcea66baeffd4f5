/**
 * Core's admin socket: AdminService on a Unix socket in a folder only core's user can enter (0700),
 * so the operator's commands (core's CLI) work while core runs, whatever the state store, and need no
 * credential of their own: being able to open the socket is being core's user (or root).
 */
import { chmod, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AdminService } from "../../../../gen/devex/core/v1/admin_pb.js";
import { type RunningServer, startServer } from "../../../../lib/kit/server.js";
import { type AdminDeps, createAdminService } from "./service.js";

/** The admin socket of core's data directory (DEVEX_DATA_DIR); core's CLI finds it there. */
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, "admin", "core.sock");
}

export async function startAdminSocket(socketPath: string, d: AdminDeps): Promise<RunningServer> {
  const folder = dirname(socketPath);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  // It may have been made before, or under another umask: the folder is what keeps others out.
  await chmod(folder, 0o700);
  return startServer({
    name: "core-admin",
    port: 0,
    tcp: false,
    socketPath,
    socketMode: 0o600,
    log: d.log,
    routes(router) {
      router.service(AdminService, createAdminService(d));
    },
  });
}
