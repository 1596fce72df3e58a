"""The tool agent: serves the session's tools on a Unix socket in a folder shared with the host.

Started on demand by init.py inside every sandbox, as the session user, with the standard library
only, so it runs in any image that has python3. init listens on the socket and hands it over; the
agent leaves again after `IDLE_EXIT_S` without calls, unless it holds state (background processes,
watched directories), so an idle session goes back to being one small process. Each connection
carries requests one after another; the host opens as many connections as it has calls in flight.

Before a checkpoint of a gvisor session, init asks (over CONTROL_FD) that the agent let go of every
socket of the host it holds, which gVisor cannot checkpoint: the listening socket and each
connection are shut down and their descriptors pointed at a socket pair of the sandbox's own, under
the lock closing takes, so no descriptor number is reused meanwhile. After the restore init hands
over a new listening socket, put in the listener's place (init.py).
"""

import contextlib
import os
import socket
import socketserver
import sys
import threading
import time
from typing import Any

from . import protocol
from .answer_size import ANSWER_BUDGET_BYTES, line_size
from .tools import InvalidArguments, Tool, ToolError, all_tools, find_tool, hold_state, tool_names

LISTEN_FD = 3
"""The listening socket init.py passes on."""
CONTROL_FD = 4
"""The agent's end of its socket pair with init (init.py)."""
IDLE_EXIT_S = float(os.environ.get("COVE_AGENT_IDLE_EXIT_S", 120))
"""An agent with no call for this long, and nothing to remember, leaves; init starts it again."""
SERVER_INFO = {"name": "cove-agent", "version": "1"}
PROTOCOL_VERSION = "2025-06-18"


class Agent:
    """Answers one JSON-RPC request; the methods MCP defines, over the session's tools."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def tool(self, name: str) -> Tool | None:
        """A tool by name; its module is imported on its first call, and only its own, so an agent
        that ran a command has loaded the shell tool and not the desktop or file tools."""
        tool = self._tools.get(name)
        if tool is None and (tool := find_tool(name)) is not None:
            self._tools[name] = tool
        return tool

    def answer(self, message: dict[str, Any]) -> dict[str, Any] | None:
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        if not isinstance(method, str) or not isinstance(params, dict):
            return protocol.error(
                request_id, protocol.INVALID_REQUEST, "a request needs a method and object params"
            )
        if request_id is None:
            return None  # a notification: nothing to answer
        if method == "initialize":
            return protocol.result(
                request_id,
                {
                    "protocolVersion": PROTOCOL_VERSION,
                    "serverInfo": SERVER_INFO,
                    "capabilities": {"tools": {}},
                },
            )
        if method == "ping":
            return protocol.result(request_id, {})
        if method == "tools/list":
            return protocol.result(request_id, {"tools": [tool.describe() for tool in all_tools().values()]})
        if method == "tools/call":
            return self.call_tool(request_id, params)
        return protocol.error(request_id, protocol.METHOD_NOT_FOUND, f"unknown method '{method}'")

    def call_tool(self, request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        tool = self.tool(name) if isinstance(name, str) else None
        if tool is None:
            known = ", ".join(tool_names())
            return protocol.error(
                request_id, protocol.INVALID_PARAMS, f"unknown tool '{name}'; tools: {known}"
            )
        try:
            text = tool.run(tool.check(params.get("arguments") or {}))
            is_error = False
        except InvalidArguments as error:
            return protocol.error(request_id, protocol.INVALID_PARAMS, str(error))
        except ToolError as error:
            text, is_error = str(error), True
        except Exception as error:  # a bug in a tool must not take the agent down
            import traceback  # only here: it loads linecache, tokenize and textwrap

            traceback.print_exc()
            text, is_error = f"{name} failed: {type(error).__name__}: {error}", True
        # Lone surrogates (from a file name that is not UTF-8, say) would not survive as UTF-8 on the host.
        text = text.encode(errors="surrogatepass").decode(errors="replace")
        if (size := line_size(text)) > ANSWER_BUDGET_BYTES:  # the answer must fit its line, whatever it holds
            text, is_error = (
                (
                    f"{name}: the answer would take {size} bytes once JSON-escaped, more than the "
                    f"{ANSWER_BUDGET_BYTES} an answer may take; ask for less (read a file in parts, with "
                    "offset and length, or as format binary)"
                ),
                True,
            )
        return protocol.result(request_id, {"content": [{"type": "text", "text": text}], "isError": is_error})


class Connection(socketserver.StreamRequestHandler):
    agent: Agent
    activity: "Activity"

    def handle(self) -> None:
        with self.activity:
            self.serve_requests()

    def serve_requests(self) -> None:
        while True:
            try:
                message = protocol.read_message(self.rfile)
            except protocol.ProtocolError as error:
                protocol.write_message(self.wfile, protocol.error(None, protocol.PARSE_ERROR, str(error)))
                return
            if message is None:
                return
            if message.get("method") in ("files/upload", "files/download", "files/pack", "files/unpack"):
                self.transfer(message)
                return
            if message.get("method") in ("ports/connect", "desktop/view"):
                self.relay(message)
                return
            answer = self.agent.answer(message)
            if answer is not None:
                protocol.write_message(self.wfile, answer)

    def transfer(self, message: dict[str, Any]) -> None:
        """A streamed upload, download, unpack or pack: raw bytes follow the request or the answer line."""
        from . import transfers  # only when needed: it loads the file tools

        request_id, params = message.get("id"), message.get("params")
        try:
            if message["method"] == "files/upload":
                saved = transfers.receive_file(params, self.rfile)
                protocol.write_message(self.wfile, protocol.result(request_id, saved))
            elif message["method"] == "files/unpack":
                unpacked = transfers.receive_pack(params, self.rfile)
                protocol.write_message(self.wfile, protocol.result(request_id, unpacked))
            elif message["method"] == "files/pack":
                folder, max_file_bytes = transfers.open_for_pack(params)
                protocol.write_message(self.wfile, protocol.result(request_id, {"path": folder}))
                transfers.send_pack(self.wfile, folder, max_file_bytes)
            else:
                source, size = transfers.open_for_download(params)
                protocol.write_message(self.wfile, protocol.result(request_id, {"size": size}))
                transfers.send_file(self.connection, source, size)
        except transfers.TransferError as error:
            protocol.write_message(self.wfile, protocol.error(request_id, error.code, str(error)))

    def relay(self, message: dict[str, Any]) -> None:
        """A connection to a port in the sandbox, or to a new viewer of the display: one answer line,
        then raw bytes both ways."""
        from . import desktop_viewer, ports

        request_id, params = message.get("id"), message.get("params")
        try:
            if message["method"] == "ports/connect":
                upstream = ports.connect(ports.checked_port(params))
            else:
                upstream = desktop_viewer.open_view(desktop_viewer.interactive(params))
        except ports.PortError as error:
            protocol.write_message(self.wfile, protocol.error(request_id, error.code, str(error)))
            return
        with upstream:
            protocol.write_message(self.wfile, protocol.result(request_id, {}))
            ports.relay(self.connection, self.rfile, upstream)


class Activity:
    """Open connections and the time of the last one, to know when the agent is idle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.last = time.monotonic()

    def __enter__(self) -> None:
        with self.lock:
            self.open += 1

    def __exit__(self, *_: object) -> None:
        with self.lock:
            self.open -= 1
            self.last = time.monotonic()

    def idle_for(self, seconds: float) -> bool:
        with self.lock:
            return self.open == 0 and time.monotonic() - self.last > seconds


class HostSockets:
    """The host's sockets the agent holds (open connections), to let go of them for a checkpoint."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.stand_in, self._other_end = socket.socketpair()
        """A socket of the sandbox's own, which released descriptors point at until they are closed."""

    def add(self, connection: socket.socket) -> None:
        with self.lock:
            self.open.add(connection)

    def close(self, connection: socket.socket) -> None:
        with self.lock:
            self.open.discard(connection)
            connection.close()

    def release(self) -> None:
        """Shut every connection and the listener down, their descriptors left on the stand-in."""
        with self.lock:
            for connection in [*self.open]:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                if connection.fileno() >= 0:
                    os.dup2(self.stand_in.fileno(), connection.fileno())
            os.dup2(self.stand_in.fileno(), LISTEN_FD)

    def take_listener(self, descriptor: int) -> None:
        os.dup2(descriptor, LISTEN_FD)
        os.close(descriptor)


def follow_init(control: socket.socket, sockets: HostSockets) -> None:
    """Let go of the host's sockets when init asks, and take the listening socket it hands over."""
    while True:
        try:
            message, descriptors, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not message:
            return
        if message == b"S":
            sockets.release()
            control.sendall(b"A")
        elif message == b"L" and descriptors:
            sockets.take_listener(descriptors[0])


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    host_sockets: HostSockets

    def process_request(self, request: Any, client_address: Any) -> None:
        self.host_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
        self.host_sockets.close(request)

    def service_actions(self) -> None:
        """Called between requests by serve_forever: leave when idle and stateless."""
        if Connection.activity.idle_for(IDLE_EXIT_S) and not hold_state():
            raise SystemExit(0)


def serve() -> None:
    """Serve on the listening socket init.py handed over (fd 3) until idle."""
    Connection.agent = Agent()
    Connection.activity = Activity()
    server = Server("", Connection, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=LISTEN_FD)
    server.host_sockets = HostSockets()
    try:
        control = socket.socket(fileno=CONTROL_FD)
    except OSError:  # started by an older init
        pass
    else:
        threading.Thread(target=follow_init, args=(control, server.host_sockets), daemon=True).start()
    print("cove-agent: serving", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=1.0)
    finally:
        # The listening socket stays open in init, which starts an agent for the next connection.
        server.socket.close()
