/**
 * connect-es's gRPC handler (protocol-grpc/handler-factory.ts at 2.1.2, pinned), changed in three
 * places, all for the terminal path:
 *  - a streamed response message whose large `bytes` field can go out in parts (bytes-parts.ts) is
 *    written as its envelope head and then the field's own bytes, not serialized and enveloped into
 *    two fresh copies (that halved what the runner allocates per byte of output);
 *  - an uncompressed response on an HTTP/2 stream gets a response lane (response-lane.ts), for
 *    handlers that write their messages past the response chain;
 *  - the request's messages are read by one generator (request-messages.ts), not connect's four,
 *    from the Node request without connect-node's and Node's generators (request-chunks.ts).
 * Everything else is connect's: content types, timeouts, compression negotiation, the interceptors
 * (metrics, the error boundary, auth, validation), the abort handling and the trailers.
 *
 * `withPartsStreams` registers it, for the binary gRPC content types of methods that stream
 * responses with a `bytes` field, in front of connect's own handlers; JSON, the Connect protocol and
 * gRPC-web, unary methods and the other streams keep connect's path. So does a response compressed
 * by negotiation (the services that carry bulk bytes accept no compression).
 */

import type { Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type MethodImplSpec,
} from "@connectrpc/connect";
import {
  type AsyncIterableTransform,
  assertByteStreamRequest,
  compressionNegotiate,
  contentTypeMatcher,
  createMethodSerializationLookup,
  createMethodUrl,
  createUniversalMethodHandler,
  encodeEnvelope,
  pipe,
  type Serialization,
  transformCatchFinally,
  transformCompressEnvelope,
  transformInvokeImplementation,
  transformJoinEnvelopes,
  transformSerializeEnvelope,
  type UniversalHandler,
  type UniversalHandlerFn,
  type UniversalHandlerOptions,
  type UniversalServerRequest,
  type UniversalServerResponse,
  untilFirst,
  uResponseMethodNotAllowed,
  uResponseOk,
  uResponseUnsupportedMediaType,
  validateUniversalHandlerOptions,
} from "@connectrpc/connect/protocol";
import {
  contentTypeProto,
  grpcStatusOk,
  headerAcceptEncoding,
  headerContentType,
  headerEncoding,
  headerGrpcStatus,
  headerTimeout,
  parseContentType,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { aloneBytesParser, type PartsEncoder, partsEncoder } from "./bytes-parts.js";
import { nodeRequest } from "./node-request.js";
import { requestChunks } from "./request-chunks.js";
import { requestMessages } from "./request-messages.js";
import { openResponseLane, responseLane } from "./response-lane.js";

const protocolName = "grpc";
const methodPost = "POST";
/** application/grpc and application/grpc+proto: the binary ones. */
const binaryContentType = /^application\/grpc(?:\+proto)?$/i;

type Options = ReturnType<typeof validateUniversalHandlerOptions>;
type RouterOptions = Parameters<ConnectRouter["service"]>[2];

/** Streamed messages as envelopes, a message with a large `bytes` field in parts. */
function transformSerializeParts(
  serialization: Serialization<Message>,
  encode: PartsEncoder,
): AsyncIterableTransform<Message, Uint8Array> {
  return async function* (messages) {
    for await (const message of messages) {
      const parts = encode(message as unknown as Record<string, unknown>);
      if (parts) yield* parts;
      else yield encodeEnvelope(0, serialization.serialize(message));
    }
  };
}

function createHandler(opt: Options, spec: MethodImplSpec, encode: PartsEncoder): UniversalHandlerFn {
  const serialization = createMethodSerializationLookup(spec.method, opt.binaryOptions, opt.jsonOptions, opt);
  const parseAlone = aloneBytesParser(spec.method.input);
  return async function handle(req: UniversalServerRequest): Promise<UniversalServerResponse> {
    assertByteStreamRequest(req);
    const type = parseContentType(req.header.get(headerContentType));
    if (type === undefined || !type.binary) return uResponseUnsupportedMediaType;
    if (req.method !== methodPost) return uResponseMethodNotAllowed;
    const timeout = parseTimeout(req.header.get(headerTimeout), opt.maxTimeoutMs);
    const context = createHandlerContext({
      ...spec,
      service: spec.method.parent,
      requestMethod: req.method,
      protocolName,
      timeoutMs: timeout.timeoutMs,
      shutdownSignal: opt.shutdownSignal,
      requestSignal: req.signal,
      requestHeader: req.header,
      url: req.url,
      responseHeader: { [headerContentType]: contentTypeProto },
      responseTrailer: { [headerGrpcStatus]: grpcStatusOk },
      contextValues: req.contextValues,
    });
    const compression = compressionNegotiate(
      opt.acceptCompression,
      req.header.get(headerEncoding),
      req.header.get(headerAcceptEncoding),
      headerAcceptEncoding,
    );
    if (compression.response) context.responseHeader.set(headerEncoding, compression.response.name);
    const request = nodeRequest(req.contextValues);
    const inputIt = requestMessages(
      request ? requestChunks(request) : (req.body as AsyncIterable<Uint8Array>),
      () => {
        if (compression.error) throw compression.error;
        if (timeout.error) throw timeout.error;
      },
      opt.readMaxBytes,
      compression.request,
      serialization.getI(true),
      parseAlone,
    );
    const output = serialization.getO(true);
    let pulling = false;
    if (!compression.response) {
      context.values.set(
        responseLane,
        openResponseLane(req.contextValues, output, encode, () => pulling),
      );
    }
    const it = transformInvokeImplementation(spec, context, opt.interceptors)(inputIt)[Symbol.asyncIterator]();
    const serialize: AsyncIterableTransform<Message, Uint8Array> = compression.response
      ? (messages) =>
          pipe(
            messages,
            transformSerializeEnvelope(output),
            transformCompressEnvelope(compression.response, opt.compressMinBytes),
            transformJoinEnvelopes(),
          )
      : transformSerializeParts(output, encode);
    const outputIt = pipe(
      // Aborts the context when the response ends, whichever way, as connect's handler does.
      {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            pulling = true;
            return it.next().then((r) => {
              pulling = false;
              return r;
            });
          },
          throw: (e: unknown) => {
            context.abort(e);
            return it.throw?.(e) ?? Promise.reject({ done: true });
          },
          return: (v: unknown) => {
            context.abort();
            return it.return?.(v) ?? Promise.resolve({ done: true as const, value: v });
          },
        }),
      } as AsyncIterable<Message>,
      serialize,
      transformCatchFinally<Uint8Array>((e) => {
        context.abort(e);
        if (e instanceof ConnectError) setTrailerStatus(context.responseTrailer, e);
        else if (e !== undefined) {
          setTrailerStatus(
            context.responseTrailer,
            new ConnectError("internal error", Code.Internal, undefined, undefined, e),
          );
        }
      }),
      { propagateDownStreamError: true },
    );
    return {
      ...uResponseOk,
      // Resolved with the first body bytes, so implementations may still set response headers.
      body: await untilFirst(outputIt),
      header: context.responseHeader,
      trailer: context.responseTrailer,
    };
  };
}

/** The gRPC handler with parts for `spec`, or undefined when its responses have no `bytes` field. */
function partsHandler(opt: Options, spec: MethodImplSpec): UniversalHandler | undefined {
  const tooLarge = (size: number) =>
    new ConnectError(
      `message size ${size} is larger than configured writeMaxBytes ${opt.writeMaxBytes}`,
      Code.ResourceExhausted,
    );
  const encode = partsEncoder(spec.method.output, opt, tooLarge);
  if (!encode) return undefined;
  return Object.assign(createHandler(opt, spec, encode), {
    protocolNames: [protocolName],
    allowedMethods: [methodPost],
    supportedContentType: contentTypeMatcher(binaryContentType),
    requestPath: createMethodUrl("/", spec.method),
    service: spec.method.parent,
    method: spec.method,
  });
}

const streamsResponses = (spec: MethodImplSpec) => spec.kind === "server_streaming" || spec.kind === "bidi_streaming";

/**
 * `router`, whose services and methods that stream responses also get the gRPC handler with parts,
 * ahead of connect's. `base` is what the router was made with (the adapter's options), since a
 * service's handlers take the router's options with the service's own over them, as connect does.
 */
export function withPartsStreams(router: ConnectRouter, base: Partial<UniversalHandlerOptions>): ConnectRouter {
  const addParts = (spec: MethodImplSpec, options: RouterOptions) => {
    if (!streamsResponses(spec)) return;
    const ours = partsHandler({ ...validateUniversalHandlerOptions(base), ...options } as Options, spec);
    if (!ours) return;
    const index = router.handlers.findLastIndex((h) => h.method === spec.method);
    const connects = router.handlers[index];
    // Negotiation takes the first handler that accepts the content type: ours for binary gRPC.
    router.handlers[index] = createUniversalMethodHandler(spec, [
      Object.assign(() => ours, { protocolName }),
      Object.assign(() => connects, { protocolName: "connect-es" }),
    ]);
  };
  const wrapped: ConnectRouter = {
    handlers: router.handlers,
    service(service, implementation, options) {
      router.service(service, implementation, options);
      for (const spec of Object.values(createServiceImplSpec(service, implementation).methods)) addParts(spec, options);
      return wrapped;
    },
    rpc(method, implementation, options) {
      router.rpc(method, implementation, options);
      addParts(createMethodImplSpec(method, implementation as never), options);
      return wrapped;
    },
  };
  return wrapped;
}
