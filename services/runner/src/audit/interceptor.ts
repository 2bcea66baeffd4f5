/**
 * Records the runner's state-changing calls (audited.ts) for the audit log: who (the runner token's
 * user and `tid`), from where (the client's address), what, and how it ended ("ok" or the Connect
 * code's name; a stream once it sent its first message or failed before it: lib/kit/call-outcome.ts).
 * Runs after authentication and before the scope check (runner.ts), so a call its token's scopes
 * refuse is recorded (permission_denied); calls without a valid token are not anyone's to record.
 */
import type { Interceptor } from "@connectrpc/connect";
import { callOutcomeInterceptor } from "../../../../lib/kit/call-outcome.js";
import { clientAddressKey } from "../../../../lib/kit/client-address.js";
import { principalKey } from "../auth.js";
import { audited, detailsOf } from "./audited.js";
import type { AuditReporter } from "./reporter.js";

export function runnerAuditInterceptor(reporter: AuditReporter): Interceptor {
  return callOutcomeInterceptor((req) => {
    const claims = req.contextValues.get(principalKey);
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const what = claims && audited(rpc, claims.tid);
    if (!claims || !what) return undefined;
    const time = Date.now();
    return (ending, request, response) =>
      reporter.add(
        {
          time,
          userId: claims.sub,
          tokenId: claims.tid ?? "",
          clientAddress: req.contextValues.get(clientAddressKey),
          rpc,
          ...ending,
          details: detailsOf(what, request, response),
        },
        what.fileChange,
      );
  }, 512);
}
