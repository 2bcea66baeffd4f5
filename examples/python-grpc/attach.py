"""Run commands in a new terminal of a Devex repl over gRPC, through core, with grpcio.

    python3 attach.py http://127.0.0.1:8080 <repl-id> "echo hello" "stty size"

DEVEX_TOKEN holds a Devex API token. The message classes come from proto/ (see README.md); the
calls need no generated service code. Prints the terminal's output and exits with its exit code.
"""
import json, os, sys, threading, urllib.request
from urllib.parse import urlparse

import grpc
from devex.runner.v1 import terminal_pb2 as t

core, repl_id, commands = sys.argv[1], sys.argv[2], sys.argv[3:]

# StartRepl (Connect's JSON protocol: a plain POST) starts the repl if needed and returns a
# short-lived token for its runner.
start = urllib.request.Request(
    f"{core}/devex.core.v1.ReplService/StartRepl",
    data=json.dumps({"replId": repl_id}).encode(),
    headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['DEVEX_TOKEN']}"},
)
runner_token = json.load(urllib.request.urlopen(start))["runner"]["token"]

# gRPC to core's own port: the devex-repl-id header routes each call to that repl's runner.
channel = grpc.insecure_channel(urlparse(core).netloc)
metadata = [("devex-repl-id", repl_id), ("authorization", f"Bearer {runner_token}")]
create = channel.unary_unary(
    "/devex.runner.v1.TerminalService/CreateTerminal",
    request_serializer=t.CreateTerminalRequest.SerializeToString,
    response_deserializer=t.CreateTerminalResponse.FromString,
)
attach = channel.stream_stream(
    "/devex.runner.v1.TerminalService/Attach",
    request_serializer=t.AttachRequest.SerializeToString,
    response_deserializer=t.AttachResponse.FromString,
)

terminal = create(
    t.CreateTerminalRequest(command=["bash", "--norc"], size=t.TerminalSize(cols=100, rows=30)),
    metadata=metadata,
    timeout=30,
).terminal

attached = threading.Event()


def frames():
    yield t.AttachRequest(start=t.AttachStart(terminal_id=terminal.terminal_id))
    attached.wait(30)
    yield t.AttachRequest(resize=t.TerminalSize(cols=120, rows=40))
    for line in commands + ["exit"]:
        yield t.AttachRequest(input=f"{line}\n".encode())


exit_code = 1
for frame in attach(frames(), metadata=metadata, timeout=60):
    kind = frame.WhichOneof("frame")
    if kind == "attached":
        attached.set()
    elif kind == "output":
        sys.stdout.buffer.write(frame.output)
        sys.stdout.flush()
    elif kind == "exit":
        exit_code = frame.exit.exit_code
sys.exit(exit_code)
