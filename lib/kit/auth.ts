/**
 * Auth is context: an interceptor authenticates every call and stores the principal under a typed
 * context key; handlers read it with `principalOf`. Services choose their principal type and their
 * `authenticate` function (API tokens and sessions in core, signed repl tokens in the runner).
 */
import { type ContextKey, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { unauthenticated } from "./errors.js";

/** Creates the context key for a service's principal. */
export function createPrincipalKey<P>(description: string): ContextKey<P | undefined> {
  return createContextKey<P | undefined>(undefined, { description });
}

/** Services open to anyone: grpc.health.v1.Health (probes). */
export const OPEN_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health"]);

/**
 * Authenticates each request before its handler runs. `authenticate` receives the request headers
 * and the service/method being called, returns the principal, and throws DomainError
 * (Unauthenticated/PermissionDenied) to refuse. Methods listed in `open` skip authentication (for
 * grpc.health.v1.Health only).
 */
export function authInterceptor<P>(
  key: ContextKey<P | undefined>,
  authenticate: (headers: Headers, method: { service: string; name: string }) => Promise<P> | P,
  open: ReadonlySet<string> = OPEN_SERVICES,
): Interceptor {
  return (next) => async (req) => {
    if (open.has(req.service.typeName)) return next(req);
    // A refusal (DomainError) is converted once, by the kit's error boundary around this interceptor.
    const principal = await authenticate(req.header, { service: req.service.typeName, name: req.method.name });
    req.contextValues.set(key, principal);
    return next(req);
  };
}

/** The authenticated principal of this call; throws Unauthenticated if the interceptor did not run. */
export function principalOf<P>(ctx: HandlerContext, key: ContextKey<P | undefined>): P {
  const p = ctx.values.get(key);
  if (p === undefined) throw unauthenticated("not authenticated");
  return p;
}
