/**
 * The fallback, measured: TerminalService's CreateTerminal, Attach and CloseTerminal served
 * by @grpc/grpc-js instead of connect-node, around the runner's own TerminalRegistry and
 * TerminalAttach (the same sessions, batching, coalescing and flow control). No auth and no
 * interceptors, so it is an upper bound for what moving the h2c gRPC path to grpc-js could gain.
 * Bench-only. Usage: node --import tsx bench/grpcjs-terminal-server.ts; prints "listening on <url>".
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type AttachRequest,
  AttachRequestSchema,
  AttachResponseSchema,
  CloseTerminalRequestSchema,
  CloseTerminalResponseSchema,
  CreateTerminalRequestSchema,
  CreateTerminalResponseSchema,
} from "../gen/devex/runner/v1/terminal_pb.js";
import { ActivityTracker } from "../services/runner/src/activity.js";
import { userEnv } from "../services/runner/src/runner.js";
import { TerminalAttach } from "../services/runner/src/terminals/attach.js";
import { TerminalRegistry } from "../services/runner/src/terminals/registry.js";
import { terminalProto } from "../services/runner/src/terminals/terminal-proto.js";
import { Workspace } from "../services/runner/src/workspace/paths.js";

const dir = await mkdtemp(path.join(tmpdir(), "devex-grpcjs-bench-"));
const workspace = await Workspace.open(dir);
const terminals = new TerminalRegistry({
  workspace,
  baseEnv: () => userEnv(),
  maxTerminals: 64,
  scrollbackBytes: 1024 * 1024,
});
const activity = new ActivityTracker();

function method<I extends DescMessage, O extends DescMessage>(name: string, input: I, output: O, stream: boolean) {
  return {
    path: `/devex.runner.v1.TerminalService/${name}`,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

const definition = {
  createTerminal: method("CreateTerminal", CreateTerminalRequestSchema, CreateTerminalResponseSchema, false),
  closeTerminal: method("CloseTerminal", CloseTerminalRequestSchema, CloseTerminalResponseSchema, false),
  attach: method("Attach", AttachRequestSchema, AttachResponseSchema, true),
};

const server = new grpc.Server({ "grpc-node.flow_control_window": 8 * 1024 * 1024 });
server.addService(definition, {
  createTerminal(
    call: grpc.ServerUnaryCall<MessageShape<typeof CreateTerminalRequestSchema>, unknown>,
    done: grpc.sendUnaryData<unknown>,
  ) {
    terminals
      .create({ command: call.request.command, cwd: call.request.cwd, env: call.request.env })
      .then((s) => done(null, create(CreateTerminalResponseSchema, { terminal: terminalProto(s) })))
      .catch((e) => done(e));
  },
  closeTerminal(
    call: grpc.ServerUnaryCall<MessageShape<typeof CloseTerminalRequestSchema>, unknown>,
    done: grpc.sendUnaryData<unknown>,
  ) {
    terminals
      .close(call.request.terminalId)
      .then(() => done(null, create(CloseTerminalResponseSchema, {})))
      .catch((e) => done(e));
  },
  attach(call: grpc.ServerDuplexStream<AttachRequest, unknown>) {
    const stop = new AbortController();
    call.on("cancelled", () => stop.abort());
    call.on("error", () => stop.abort());
    let client: TerminalAttach | undefined;
    call.on("data", (req: AttachRequest) => {
      if (client) return client.apply(req);
      if (req.frame.case !== "start") return call.destroy(new Error("the first frame must be start"));
      const start = req.frame.value;
      const c = new TerminalAttach(terminals.get(start.terminalId), activity);
      client = c;
      void (async () => {
        for await (const frame of c.frames({ replay: start.replay, signal: stop.signal })) {
          if (!call.write(create(AttachResponseSchema, { frame }))) await new Promise((r) => call.once("drain", r));
        }
        call.end();
      })();
    });
  },
});
process.once("SIGTERM", async () => {
  server.forceShutdown();
  await terminals.closeAll(200);
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`listening on http://127.0.0.1:${port}`);
});
