/**
 * Records every call of a signed-in user that can change state: each RPC whose idempotency level
 * is not NO_SIDE_EFFECTS, except the Watch streams (they only read). Derived from the descriptors,
 * so a new RPC is recorded without being listed. A call is recorded once it is answered, with its
 * outcome: "ok" or the error's code; a stream once it sent its first message ("ok") or failed before
 * it (lib/kit/call-outcome.ts). It runs outside authentication, so a call its token's scopes refuse
 * is recorded too (permission_denied); calls nobody could be authenticated for are not (there is no
 * user to file them under). Runners' own calls (RunnerControlService) are not user actions and are
 * not recorded.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import { callOutcomeInterceptor } from "../../../../lib/kit/call-outcome.js";
import { clientAddressKey } from "../../../../lib/kit/client-address.js";
import type { Outcome } from "../../../../lib/kit/outcome.js";
import { type Principal, principalKey } from "../auth/principal.js";
import type { AuditRecord } from "../state/store.js";
import { detailsOf } from "./details.js";
import { credentialOf } from "./event.js";
import type { AuditRecorder } from "./recorder.js";

/** Whether calls of this method are recorded: not reads, and not watches. */
export function changesState(method: DescMethod): boolean {
  return method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS && !method.name.startsWith("Watch");
}

export function auditInterceptor(recorder: AuditRecorder): Interceptor {
  return callOutcomeInterceptor((req) => {
    if (!changesState(req.method)) return undefined;
    const time = Date.now();
    const rpc = `${req.service.typeName}/${req.method.name}`;
    return (ending, request, response) => {
      const event = eventOf(req.contextValues, { time, rpc, ...ending }, request, response);
      if (event) recorder.record(event);
    };
  });
}

/** The event of a call by a user (the principal authentication set, read once the call ended). */
function eventOf(
  values: ContextValues,
  call: { time: number; rpc: string } & Outcome,
  req: unknown,
  res: unknown,
): AuditRecord | undefined {
  const p: Principal | undefined = values.get(principalKey);
  if (p?.kind !== "user") return undefined;
  return {
    ...call,
    userId: p.userId,
    tokenId: credentialOf(p),
    clientAddress: values.get(clientAddressKey),
    ...detailsOf(call.rpc, req, res),
  };
}
