"""The host's side of a sandbox's tool agent: JSON-RPC over the Unix socket in the session's run dir.

The run dir is writable from inside the sandbox, so nothing in it is trusted: the socket is opened
without following symlinks and must really be a socket before the host connects to it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

from cove.agent import protocol
from cove.errors import FileNotFound, InvalidArgument, SandboxError, UpstreamError

SOCKET_NAME = "agent.sock"
START_TIMEOUT_S = 10.0
"""How long a call waits for an agent that is (re)starting before it gives up."""
ANSWER_MARGIN_S = 10.0
"""Time allowed on top of a call's own timeout for the answer to arrive."""
TRANSFER_IDLE_TIMEOUT_S = 60.0
"""A streamed transfer fails when the agent sends or takes nothing for this long (the server's
file routes pass their own, `transfer_stall_timeout_s`)."""
CHUNK_BYTES = 1024 * 1024
DOWNLOAD_BUFFER_BYTES = CHUNK_BYTES
"""The line limit of a download's stream, and so its buffer: the reader stops taking bytes from the
agent past twice this, so a client that reads slowly, or not at all, holds the agent back instead
of filling the server's memory (the answer line before the bytes is far shorter)."""
ERROR_MESSAGE_CHARS = 4096
"""An agent's error message is cut to this before it is passed on to the client."""
PORT_BUFFER_BYTES = 256 * 1024
"""A relayed port connection buffers about this much before it stops reading (back-pressure)."""


def check_path(path: str) -> None:
    """Refuse a file path before it is sent to the agent: empty, or with a NUL no system call takes."""
    if not path:
        raise InvalidArgument("path: a file path is required")
    if "\0" in path:
        raise InvalidArgument("path: a file path cannot contain a NUL character")


class AgentClient:
    def __init__(self, run_dir: Path, session_id: str) -> None:
        self.run_dir = run_dir
        self.session_id = session_id

    def _open_socket_path(self) -> int:
        """An O_PATH descriptor of the agent's socket, reached without following any symlink."""
        directory = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            descriptor = os.open(SOCKET_NAME, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
        finally:
            os.close(directory)
        if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise SandboxError(
                f"the tool agent of {self.session_id} is not available: {SOCKET_NAME} is not a socket"
            )
        return descriptor

    def connect(self) -> socket.socket:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                descriptor = self._open_socket_path()
                try:
                    # Connecting through /proc/self/fd uses the checked inode, not the path again.
                    sock.connect(f"/proc/self/fd/{descriptor}")
                finally:
                    os.close(descriptor)
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as error:
                sock.close()
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the tool agent of {self.session_id} did not start within {START_TIMEOUT_S:.0f} s "
                        f"({error.strerror}); delete the session and create a new one"
                    ) from None
                time.sleep(0.01)
            except BaseException:
                sock.close()
                raise

    def call(self, method: str, params: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        """Send one request and answer its result; JSON-RPC errors become Cove errors."""
        with self.connect() as sock:
            sock.settimeout(timeout_s + ANSWER_MARGIN_S)
            with sock.makefile("rwb") as stream:
                try:
                    protocol.write_message(stream, protocol.request(1, method, params))
                    answer = protocol.read_message(stream)
                except (TimeoutError, OSError, protocol.ProtocolError) as error:
                    raise self._failed(error) from None
        return self._result(answer)

    def _failed(self, error: BaseException) -> SandboxError:
        reason = "no answer in time" if isinstance(error, TimeoutError) else str(error)
        return SandboxError(f"the tool agent of {self.session_id} failed to answer: {reason}")

    def _result(self, answer: dict[str, Any] | None) -> dict[str, Any]:
        """The answer's result; the agent runs inside the sandbox, so any other shape is its failure."""
        if answer is None:
            raise SandboxError(f"the tool agent of {self.session_id} closed the connection without answering")
        if "error" in answer:
            error = answer["error"]
            if not isinstance(error, dict):
                raise self._failed(protocol.ProtocolError("an error must be a JSON object"))
            code, message = error.get("code"), str(error.get("message"))[:ERROR_MESSAGE_CHARS]
            if code in (protocol.INVALID_PARAMS, protocol.METHOD_NOT_FOUND):
                raise InvalidArgument(message)
            if code == protocol.NOT_FOUND:
                raise FileNotFound(message)
            if code == protocol.PORT_CLOSED:
                raise UpstreamError(message)
            raise SandboxError(f"the tool agent of {self.session_id} failed: {message}")
        result = answer.get("result")
        if not isinstance(result, dict):
            raise self._failed(protocol.ProtocolError("a result must be a JSON object"))
        return result

    async def _open_stream(
        self, limit: int = protocol.MAX_LINE_BYTES + 1, sock: socket.socket | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over `sock` (connected by the caller already), or over a new connection."""
        if sock is None:
            sock = await asyncio.to_thread(self.connect)
        try:
            return await asyncio.open_unix_connection(sock=sock, limit=limit)
        except BaseException:
            sock.close()
            raise

    async def _answer(
        self, reader: asyncio.StreamReader, stall_timeout_s: float = TRANSFER_IDLE_TIMEOUT_S
    ) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), stall_timeout_s)
            return self._result(protocol.decode(line))
        except (TimeoutError, OSError, ValueError, protocol.ProtocolError) as error:
            raise self._failed(error) from None

    async def upload(
        self,
        path: str,
        size: int | None,
        chunks: AsyncIterator[bytes],
        stall_timeout_s: float = TRANSFER_IDLE_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Stream `size` bytes into the file at `path` in the sandbox; answers its path and size.

        The agent keeps the bytes only if exactly `size` arrive, so a body that is cut short or too
        long changes nothing in the sandbox. With `size` None (a body whose length is not known
        before its end) the bytes go in frames, and the file is kept once the last frame is sent.
        """
        if size is None:
            return await self._send_frames(path, chunks, stall_timeout_s)
        return await self._send_stream("files/upload", path, size, chunks, "upload", stall_timeout_s)

    async def download(
        self, path: str, stall_timeout_s: float = TRANSFER_IDLE_TIMEOUT_S
    ) -> tuple[int, AsyncGenerator[bytes]]:
        """The size of the file at `path` in the sandbox, and its bytes as they are read from the
        body: never more than DOWNLOAD_BUFFER_BYTES ahead of the reader, so whoever drains the body
        sets the pace."""
        check_path(path)
        reader, writer = await self._open_stream(DOWNLOAD_BUFFER_BYTES)
        try:
            writer.write(protocol.encode(protocol.request(1, "files/download", {"path": path})))
            size = (await self._answer(reader, stall_timeout_s)).get("size")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise self._failed(protocol.ProtocolError(f"the size of {path} is not a whole number"))
        except BaseException:
            writer.close()
            raise

        async def body() -> AsyncGenerator[bytes]:
            try:
                remaining = size
                while remaining:
                    async with asyncio.timeout(stall_timeout_s):  # no task per chunk, as wait_for makes
                        chunk = await reader.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        raise self._failed(EOFError(f"the download of {path} was cut short"))
                    remaining -= len(chunk)
                    yield chunk
            except (TimeoutError, OSError) as error:
                raise self._failed(error) from None
            finally:
                writer.close()

        return size, body()

    async def pack(self, path: str, max_file_bytes: int) -> AsyncIterator[bytes]:
        """The folder at `path` in the sandbox as a tar stream (`files/pack`), until the agent ends it;
        files over `max_file_bytes`, and sparse ones, are left out (protocol.LEFT_OUT_HEADER).

        The stream comes from the sandbox: whoever reads it must treat every member as untrusted.
        """
        check_path(path)
        reader, writer = await self._open_stream()
        try:
            params = {"path": path, "max_file_bytes": max_file_bytes}
            writer.write(protocol.encode(protocol.request(1, "files/pack", params)))
            await self._answer(reader)
        except BaseException:
            writer.close()
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.wait_for(reader.read(CHUNK_BYTES), TRANSFER_IDLE_TIMEOUT_S):
                    yield chunk
            except (TimeoutError, OSError) as error:
                raise self._failed(error) from None
            finally:
                writer.close()

        return body()

    async def unpack(self, path: str, size: int, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Unpack a `size`-byte tar stream into the folder `path` in the sandbox (`files/unpack`)."""
        return await self._send_stream("files/unpack", path, size, chunks, "archive")

    async def _send_stream(
        self,
        method: str,
        path: str,
        size: int,
        chunks: AsyncIterator[bytes],
        what: str,
        stall_timeout_s: float = TRANSFER_IDLE_TIMEOUT_S,
    ) -> dict[str, Any]:
        """A request line, then exactly `size` raw bytes, then the agent's answer."""
        check_path(path)
        reader, writer = await self._open_stream()
        try:
            writer.write(protocol.encode(protocol.request(1, method, {"path": path, "size": size})))
            sent = 0
            async for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    raise InvalidArgument(f"the {what} is longer than its declared size of {size} bytes")
                writer.write(chunk)
                try:
                    async with asyncio.timeout(stall_timeout_s):
                        await writer.drain()
                except TimeoutError as error:
                    raise self._failed(error) from None
            if sent < size:
                raise InvalidArgument(f"the {what} ended after {sent} of its declared {size} bytes")
            return await self._answer(reader, stall_timeout_s)
        finally:
            writer.close()

    async def _send_frames(
        self, path: str, chunks: AsyncIterator[bytes], stall_timeout_s: float
    ) -> dict[str, Any]:
        """An upload of unknown length: each chunk as a frame (agent/transfers.py), then the empty one."""
        check_path(path)
        reader, writer = await self._open_stream()
        try:
            params = {"path": path, "chunked": True}
            writer.write(protocol.encode(protocol.request(1, "files/upload", params)))
            async for chunk in chunks:
                if not chunk:
                    continue
                writer.write(protocol.FRAME_HEADER.pack(len(chunk)) + chunk)
                try:
                    async with asyncio.timeout(stall_timeout_s):
                        await writer.drain()
                except TimeoutError as error:
                    raise self._failed(error) from None
            writer.write(protocol.FRAME_HEADER.pack(0))
            return await self._answer(reader, stall_timeout_s)
        finally:
            writer.close()

    async def open_port(
        self, port: int, sock: socket.socket | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A byte stream to TCP `port` inside the sandbox, relayed by the agent (`ports/connect`).

        `sock`: a connection to the agent the caller made already with `connect`, in a worker
        thread it needed anyway (a second trip to a thread is a large part of a small request).
        Nothing listening on the port is an UpstreamError (502). The reader given back is the one
        the answer line was read from, so bytes the service sent right behind it are not lost.
        """
        return await self._open_relay("ports/connect", {"port": port}, sock)

    async def open_desktop_view(
        self, interactive: bool, sock: socket.socket | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A byte stream to a new VNC server on the session's display (`desktop/view`), which the
        agent starts if it is not running; view-only unless `interactive`. As `open_port` otherwise."""
        return await self._open_relay("desktop/view", {"interactive": interactive}, sock)

    async def _open_relay(
        self, method: str, params: dict[str, Any], sock: socket.socket | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """One request line and its answer, then the connection carries raw bytes both ways."""
        reader, writer = await self._open_stream(PORT_BUFFER_BYTES, sock)
        try:
            writer.write(protocol.encode(protocol.request(1, method, params)))
            try:
                line = await asyncio.wait_for(reader.readline(), START_TIMEOUT_S + ANSWER_MARGIN_S)
                answer = protocol.decode(line)
            except (TimeoutError, OSError, ValueError, protocol.ProtocolError) as error:
                raise self._failed(error) from None
            self._result(answer)
        except BaseException:
            writer.close()
            raise
        return reader, writer
