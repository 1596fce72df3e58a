"""The wire between the server and a sandbox's tool agent: JSON-RPC 2.0, one JSON object per line.

Used on both sides (the host imports it as `cove.agent.protocol`), so framing exists once. A call
may carry raw bytes after its line (an upload) or answer with raw bytes after its result line (a
download); the JSON says how many.
"""

from __future__ import annotations

import struct

from . import wire_json

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: `typing` is a large part of a small agent
    from typing import Any, Protocol

# JSON-RPC's error codes, as MCP uses them.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004
"""Cove's own code: the file a transfer names does not exist."""
PORT_CLOSED = -32005
"""Cove's own code: `ports/connect` found nothing listening on the port inside the sandbox."""

LEFT_OUT_HEADER = "COVE.left_out"
"""PAX header of an empty tar member `files/pack` sends for a file it left out, saying why."""
MAX_LINE_BYTES = 64 * 1024 * 1024
FRAME_HEADER = struct.Struct(">I")
"""The length before each frame of a `chunked` upload (transfers.py); an empty frame ends it."""
"""No message line may be longer; file contents beyond this go as raw bytes, not JSON."""


if TYPE_CHECKING:

    class Stream(Protocol):
        """A buffered binary stream: a socket's makefile("rwb") on the host, rfile/wfile in the agent."""

        def readline(self, size: int | None = -1, /) -> bytes: ...

        def write(self, data: bytes, /) -> int: ...

        def flush(self) -> None: ...


class ProtocolError(Exception):
    """The other side broke the protocol, or the connection ended in the middle of a message."""


def encode(message: dict[str, Any]) -> bytes:
    return wire_json.dumps(message, separators=(",", ":")).encode() + b"\n"


def write_message(stream: Stream, message: dict[str, Any]) -> None:
    stream.write(encode(message))
    stream.flush()


def read_message(stream: Stream) -> dict[str, Any] | None:
    """The next message, or None at a clean end of the connection."""
    return decode(stream.readline(MAX_LINE_BYTES + 1))


def decode(line: bytes) -> dict[str, Any] | None:
    """One message line as read from the connection; None for b"" (the connection ended)."""
    if not line:
        return None
    if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
        raise ProtocolError("message line too long or cut short")
    try:
        message = wire_json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"not JSON: {error}") from None
    except RecursionError:
        raise ProtocolError("not JSON: nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def result(request_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}
