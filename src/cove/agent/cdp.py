"""A small CDP client for the tools that drive the session's Chromium themselves (tools/page_use.py):
one WebSocket (RFC 6455, client side, text frames) to Chromium's browser-level endpoint on loopback,
written with the standard library because the agent runs in any image.

Bounded in both directions: each connection has a deadline that every read and write respects, and
a message larger than `MAX_MESSAGE_BYTES` ends it, so a page that answers too much cannot take the
agent's memory.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections import deque
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest CDP message read (a full-page screenshot is one message, its image in base64)."""
MAX_KEPT_EVENTS = 256
"""Events read while waiting for an answer, kept for a later `wait_event`; older ones are dropped."""
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class CdpError(Exception):
    """The browser refused a call, the connection failed, or the deadline passed."""


class CdpConnection:
    """One WebSocket to `ws://127.0.0.1:{port}{path}`, open until `close()` or the deadline."""

    def __init__(self, port: int, path: str, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s
        self._next_id = 0
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT_EVENTS)
        self._buffer = b""
        try:
            self._sock = socket.create_connection(("127.0.0.1", port), timeout=self._remaining())
        except OSError as error:
            raise CdpError(f"cannot reach the browser's CDP port: {error}") from None
        try:
            self._handshake(port, path)
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> CdpConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def call(self, method: str, params: dict[str, Any] | None = None, session_id: str = "") -> dict[str, Any]:
        """Send one command (to the page attached as `session_id`, if given) and answer its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self._send(json.dumps(message).encode())
        while True:
            answer = self._receive()
            if answer.get("id") != self._next_id:
                if "method" in answer:
                    self._events.append(answer)
                continue
            if "error" in answer:
                raise CdpError(f"{method}: {answer['error'].get('message', answer['error'])}")
            result: dict[str, Any] = answer.get("result", {})
            return result

    def wait_event(self, method: str, session_id: str = "") -> dict[str, Any]:
        """The params of the next event `method` (of page `session_id`), waiting until the deadline."""
        while True:
            event = self._events.popleft() if self._events else self._receive()
            if event.get("method") == method and event.get("sessionId", "") == session_id:
                params: dict[str, Any] = event.get("params", {})
                return params

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CdpError("the browser did not answer in time")
        return left

    def _handshake(self, port: int, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._write(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > 16384:
                raise CdpError("the browser's WebSocket handshake answer is too long")
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise CdpError(f"the browser refused the WebSocket: {status.decode(errors='replace')}")

    def _send(self, payload: bytes, opcode: int = TEXT) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        mask = os.urandom(4)
        repeated = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big")
        self._write(header + mask + masked)

    def _receive(self) -> dict[str, Any]:
        """The next whole message, as JSON; control frames are handled on the way."""
        parts: list[bytes] = []
        size = 0
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            if size + length > MAX_MESSAGE_BYTES:
                raise CdpError(f"the browser sent a message over {MAX_MESSAGE_BYTES >> 20} MiB")
            payload = self._read(length)
            if opcode == CLOSE:
                raise CdpError("the browser closed the connection")
            if opcode == PING:
                self._send(payload, PONG)
                continue
            if opcode == PONG:
                continue
            parts.append(payload)
            size += length
            if first & 0x80:
                try:
                    message: dict[str, Any] = json.loads(b"".join(parts))
                except ValueError:
                    raise CdpError("the browser sent a message that is not JSON") from None
                return message

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._fill()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _fill(self) -> None:
        self._sock.settimeout(self._remaining())
        try:
            chunk = self._sock.recv(1 << 20)
        except TimeoutError:
            raise CdpError("the browser did not answer in time") from None
        except OSError as error:
            raise CdpError(f"the connection to the browser failed: {error}") from None
        if not chunk:
            raise CdpError("the browser closed the connection")
        self._buffer += chunk

    def _write(self, data: bytes) -> None:
        self._sock.settimeout(self._remaining())
        try:
            self._sock.sendall(data)
        except OSError as error:
            raise CdpError(f"the connection to the browser failed: {error}") from None
