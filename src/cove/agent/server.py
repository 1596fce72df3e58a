"""The tool agent: serves the session's tools on a Unix socket in a folder shared with the host.

Started on demand by init (init.c) inside every sandbox, as the session user, with the standard library
only, so it runs in any image that has python3. init listens on the socket and hands it over; the
agent leaves again after `IDLE_EXIT_S` without calls, unless it holds state (background processes,
watched directories), so an idle session goes back to being one small process. Each connection
carries requests one after another; the host opens as many connections as it has calls in flight.

Before a checkpoint of a gvisor session, init asks (over CONTROL_FD) that the agent let go of every
socket of the host it holds, which gVisor cannot checkpoint: the listening socket and each
connection are shut down and their descriptors pointed at a socket pair of the sandbox's own, under
the lock closing takes, so no descriptor number is reused meanwhile. After the restore init hands
over a new listening socket, put in the listener's place (init.c), and the agent's poll is woken: a
poll under way still watches the listener it started with, and would only see the new one at its
next round.
"""

from __future__ import annotations

import _socket
import _thread
import io
import os
import select
import sys
import time

from . import protocol
from .answer_size import ANSWER_BUDGET_BYTES, line_size
from .tools import InvalidArguments, Tool, ToolError, all_tools, find_tool, hold_state, tool_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: `typing` and `socket` are a large part of a small agent
    import socket
    from typing import Any

LISTEN_FD = 3
"""The listening socket init passes on."""
CONTROL_FD = 4
"""The agent's end of its socket pair with init (init.c)."""
IDLE_EXIT_S = float(os.environ.get("COVE_AGENT_IDLE_EXIT_S", 60))
"""An agent with no call for this long, and nothing to remember, leaves; init starts it again."""
SERVER_INFO = {"name": "cove-agent", "version": "1"}
PROTOCOL_VERSION = "2025-06-18"
POLL_INTERVAL_S = 1.0
"""How often the agent looks whether it has been idle long enough to leave."""


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


class Writer(io.BufferedIOBase):
    """A connection's write side, as socketserver's: each write goes out whole, unbuffered."""

    def __init__(self, connection: _socket.socket) -> None:
        self.connection = connection

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.connection.sendall(data)
        return len(data)

    def fileno(self) -> int:
        return self.connection.fileno()


class Connection:
    """One connection from the host: requests one after another, on a thread of its own.

    The agent serves on `_socket` sockets and plain file objects over their descriptors: the
    `socket` and `socketserver` modules (with `enum`, `selectors` and `threading`) are about a
    megabyte of an agent that runs one command. A transfer or a relay, which needs a full
    `socket.socket`, gets one then (`host_socket`). A tool that needs `threading` imports it on its
    connection's thread, which `threading` then takes for the main one; nothing here asks it which
    thread that is.
    """

    agent: Agent
    activity: Activity
    host_sockets: HostSockets

    def __init__(self, connection: _socket.socket) -> None:
        self.connection: _socket.socket = connection
        self.rfile = open(connection.fileno(), "rb", closefd=False)  # noqa: SIM115 (closed in handle)
        self.wfile = Writer(connection)

    def handle(self) -> None:
        try:
            with self.activity:
                self.serve_requests()
        except Exception:  # as socketserver: said on stderr, and the connection ends
            import traceback

            traceback.print_exc()
        finally:
            self.rfile.close()
            try:
                self.connection.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
            self.host_sockets.close(self.connection)

    def host_socket(self) -> socket.socket:
        """The connection as a `socket.socket`, for transfers and relays (sendfile, relays' polls)."""
        upgraded = self.host_sockets.upgrade(self.connection)
        self.connection = self.wfile.connection = upgraded
        return upgraded

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
                transfers.send_file(self.host_socket(), source, size)
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
            ports.relay(self.host_socket(), self.rfile, upstream)


class Activity:
    """Open connections and the time of the last one, to know when the agent is idle."""

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
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
        self.lock = _thread.allocate_lock()
        self.open: set[_socket.socket] = set()
        self.stand_in, self._other_end = _socket.socketpair()
        """A socket of the sandbox's own, which released descriptors point at until they are closed."""
        self.wake, self._waker = _socket.socketpair()
        """Readable once a new listener is in place: the accept loop polls it beside the listener."""

    def add(self, connection: _socket.socket) -> None:
        with self.lock:
            self.open.add(connection)

    def close(self, connection: _socket.socket) -> None:
        with self.lock:
            self.open.discard(connection)
            connection.close()

    def upgrade(self, connection: _socket.socket) -> socket.socket:
        """The same connection (same descriptor) as a `socket.socket`, held in its place."""
        import socket

        with self.lock:
            self.open.discard(connection)
            upgraded = socket.socket(fileno=connection.detach())
            self.open.add(upgraded)
        return upgraded

    def release(self) -> None:
        """Shut every connection and the listener down, their descriptors left on the stand-in."""
        with self.lock:
            for connection in [*self.open]:
                try:
                    connection.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass
                if connection.fileno() >= 0:
                    os.dup2(self.stand_in.fileno(), connection.fileno())
            os.dup2(self.stand_in.fileno(), LISTEN_FD)

    def take_listener(self, descriptor: int) -> None:
        os.dup2(descriptor, LISTEN_FD)
        os.close(descriptor)
        self._waker.send(b"L")


def receive(control: _socket.socket) -> tuple[bytes, list[int]]:
    """A message from init and the descriptors that came with it (socket.recv_fds, without `array`)."""
    size = 4
    message, ancillary, _, _ = control.recvmsg(16, _socket.CMSG_LEN(size))
    descriptors = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % size
            descriptors += [int.from_bytes(data[i : i + size], sys.byteorder) for i in range(0, usable, size)]
    return message, descriptors


def follow_init(control: _socket.socket, sockets: HostSockets) -> None:
    """Let go of the host's sockets when init asks, and take the listening socket it hands over."""
    while True:
        try:
            message, descriptors = receive(control)
        except OSError:
            return
        if not message:
            return
        if message == b"S":
            sockets.release()
            control.sendall(b"A")
        elif message == b"L" and descriptors:
            sockets.take_listener(descriptors[0])


def serve() -> None:
    """Serve on the listening socket init handed over (fd 3) until idle."""
    Connection.agent = Agent()
    Connection.activity = Activity()
    Connection.host_sockets = HostSockets()
    listener = _socket.socket(fileno=LISTEN_FD)
    try:
        control = _socket.socket(fileno=CONTROL_FD)
    except OSError:  # started by an older init
        pass
    else:
        _thread.start_new_thread(follow_init, (control, Connection.host_sockets))
    print("cove-agent: serving", file=sys.stderr, flush=True)
    wake = Connection.host_sockets.wake
    poller = select.poll()
    poller.register(LISTEN_FD, select.POLLIN)  # by number: a listener put in its place is polled too
    poller.register(wake.fileno(), select.POLLIN)
    try:
        while True:
            for descriptor, _ in poller.poll(POLL_INTERVAL_S * 1000):
                if descriptor == LISTEN_FD:
                    accept(listener)
                else:
                    wake.recv(64)  # a new listener: poll it from now on
            if Connection.activity.idle_for(IDLE_EXIT_S) and not hold_state():
                return
    finally:
        # The listening socket stays open in init, which starts an agent for the next connection.
        listener.close()


def accept(listener: _socket.socket) -> None:
    """The next connection, served on a thread of its own; none if it went away meanwhile."""
    try:
        descriptor, _ = listener._accept()  # type: ignore[attr-defined]  # what socket.accept calls
    except OSError:
        return
    connection = _socket.socket(fileno=descriptor)
    Connection.host_sockets.add(connection)
    _thread.start_new_thread(Connection(connection).handle, ())
