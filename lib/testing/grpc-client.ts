/**
 * An independent gRPC client for the runner's services: @grpc/grpc-js with proto-loader reading
 * proto/ directly (not the generated Connect code), for tests and benches that check the runner
 * against a client it was not built with.
 */
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoRoot = path.resolve(import.meta.dirname, "../../proto");
const validateRoot = path.resolve(import.meta.dirname, "../../third_party/protovalidate");

// biome-ignore lint/suspicious/noExplicitAny: grpc-js clients built from proto-loader are untyped
export type GrpcClient = any;

/**
 * A grpc-js client for `devex.runner.v1.<service>` (or a full name), loaded from proto/ with
 * proto-loader; `headers` go with every call (such as core's devex-repl-id, which routes a call
 * through core to that repl's runner).
 */
export function grpcClient(
  url: string,
  service: string,
  token: string,
  headers: Record<string, string> = {},
): GrpcClient {
  const def = protoLoader.loadSync(
    [
      "devex/runner/v1/file.proto",
      "devex/runner/v1/terminal.proto",
      "devex/runner/v1/process.proto",
      "devex/runner/v1/status.proto",
      "devex/runnercontrol/v1/runner_control.proto",
    ],
    { includeDirs: [protoRoot, validateRoot], longs: String, enums: String, defaults: true, oneofs: true },
  );
  const pkg = grpc.loadPackageDefinition(def);
  const full = service.includes(".") ? service : `devex.runner.v1.${service}`;
  // biome-ignore lint/suspicious/noExplicitAny: walking the loaded package by name
  const Ctor = full.split(".").reduce((o: any, k) => o[k], pkg);
  const withToken: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (token) metadata.set("authorization", `Bearer ${token}`);
        for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
        next(metadata, listener);
      },
    });
  return new Ctor(new URL(url).host, grpc.credentials.createInsecure(), {
    interceptors: [withToken],
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // grpc-js advertises HTTP/2's default 64 KiB receive window, which caps any server at one
    // window per round trip; real clients (Go, C++ with BDP probing) use far larger ones.
    "grpc-node.flow_control_window": 8 * 1024 * 1024,
  });
}

/** Promisified unary call of a grpc-js client. */
export function unary<T = GrpcClient>(client: GrpcClient, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}
