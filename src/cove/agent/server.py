"""The tool agent: serves the session's tools on a Unix socket in a folder shared with the host.

Started (and restarted if it dies) by init.py inside every sandbox, as the session user, with the
standard library only, so it runs in any image that has python3. Each connection carries requests
one after another; the host opens as many connections as it has calls in flight.
"""

import contextlib
import os
import socketserver
import sys
import traceback
from typing import Any

from . import protocol, transfers
from .tools import InvalidArguments, Tool, ToolError, all_tools

SOCKET_PATH = "/.cove/run/agent.sock"
SERVER_INFO = {"name": "cove-agent", "version": "1"}
PROTOCOL_VERSION = "2025-06-18"


class Agent:
    """Answers one JSON-RPC request; the methods MCP defines, over the session's tools."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] | None = None

    @property
    def tools(self) -> dict[str, Tool]:
        """Loaded on the first request, so an idle session's agent stays small."""
        if self._tools is None:
            self._tools = all_tools()
        return self._tools

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
            return protocol.result(request_id, {"tools": [tool.describe() for tool in self.tools.values()]})
        if method == "tools/call":
            return self.call_tool(request_id, params)
        return protocol.error(request_id, protocol.METHOD_NOT_FOUND, f"unknown method '{method}'")

    def call_tool(self, request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            known = ", ".join(sorted(self.tools))
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
            traceback.print_exc()
            text, is_error = f"{name} failed: {type(error).__name__}: {error}", True
        return protocol.result(request_id, {"content": [{"type": "text", "text": text}], "isError": is_error})


class Connection(socketserver.StreamRequestHandler):
    agent: Agent

    def handle(self) -> None:
        while True:
            try:
                message = protocol.read_message(self.rfile)
            except protocol.ProtocolError as error:
                protocol.write_message(self.wfile, protocol.error(None, protocol.PARSE_ERROR, str(error)))
                return
            if message is None:
                return
            if message.get("method") in ("files/upload", "files/download"):
                self.transfer(message)
                return
            answer = self.agent.answer(message)
            if answer is not None:
                protocol.write_message(self.wfile, answer)

    def transfer(self, message: dict[str, Any]) -> None:
        """A streamed upload or download: raw bytes follow the request or the answer line."""
        request_id, params = message.get("id"), message.get("params")
        try:
            if message["method"] == "files/upload":
                saved = transfers.receive_file(params, self.rfile)
                protocol.write_message(self.wfile, protocol.result(request_id, saved))
            else:
                source, size = transfers.open_for_download(params)
                protocol.write_message(self.wfile, protocol.result(request_id, {"size": size}))
                transfers.send_file(self.connection, source, size)
        except transfers.TransferError as error:
            protocol.write_message(self.wfile, protocol.error(request_id, error.code, str(error)))


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 64


def serve(path: str = SOCKET_PATH) -> None:
    Connection.agent = Agent()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with Server(path, Connection) as server:
        # Only the session user may connect; the umask stays the usual 022 for what tools create.
        os.chmod(path, 0o600)
        print(f"cove-agent: serving on {path}", file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    # `python3 -I -S -c` with /.cove on sys.path runs this as `agent.server` (see init.py).
    serve()
