/** A terminal session as the API describes it (TerminalService replies and the `attached` frame). */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Terminal,
  TerminalExitSchema,
  TerminalSchema,
  TerminalSizeSchema,
} from "../../../../gen/devex/runner/v1/terminal_pb.js";
import type { TerminalSession } from "./session.js";

export function terminalProto(s: TerminalSession): Terminal {
  return create(TerminalSchema, {
    terminalId: s.id,
    name: s.name,
    command: s.command,
    cwd: s.cwd,
    size: create(TerminalSizeSchema, { cols: s.cols, rows: s.rows }),
    pid: s.pid,
    createTime: timestampFromMs(s.createTime),
    exited: s.exit !== undefined,
    exit: s.exit ? create(TerminalExitSchema, s.exit) : undefined,
    attachedClients: s.attachedClients,
  });
}
