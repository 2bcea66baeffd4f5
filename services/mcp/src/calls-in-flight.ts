/**
 * The requests a session is still answering, read from its transport: a request counts from its
 * arrival until its response is sent, or until the client cancels it (a cancelled request gets no
 * response). A session with calls in flight is never closed to make room or for being idle: that
 * would abort them (a quiet command may run an hour).
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CancelledNotificationSchema,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type RequestId,
} from "@modelcontextprotocol/sdk/types.js";

export interface CallsInFlight {
  readonly count: number;
}

/** Call after the server connected (it sets the transport's onmessage). */
export function trackCallsInFlight(transport: Transport): CallsInFlight {
  const open = new Set<RequestId>();
  const onmessage = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (isJSONRPCRequest(message)) open.add(message.id);
    else if (isJSONRPCNotification(message)) {
      const id = CancelledNotificationSchema.safeParse(message).data?.params.requestId;
      if (id !== undefined) open.delete(id);
    }
    onmessage?.(message, extra);
  };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const answered = isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message) ? message.id : undefined;
    if (answered !== undefined) open.delete(answered);
    return send(message, options);
  };
  return {
    get count() {
      return open.size;
    },
  };
}
