"""Streamed file transfers between the host and the sandbox, as raw bytes beside one JSON line.

A tool answer is a JSON line, so a 1 GiB file cannot travel as one. An upload sends its request
line and then exactly `size` raw bytes; a download answers a line with the size and then the raw
bytes (sent with sendfile). Neither side holds a whole file in memory. Both run as the session
user inside the sandbox, so the sandbox's own permissions decide what may be read or written.
"""

import io
import os
import socket
import stat
import tempfile
from typing import IO, Any, BinaryIO

from . import protocol
from .tools.files import describe, resolve

CHUNK_BYTES = 1024 * 1024


class TransferError(Exception):
    """A transfer refused or failed; `code` is the JSON-RPC error code the host maps to HTTP."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _refuse(error: OSError, path: str) -> TransferError:
    code = protocol.NOT_FOUND if isinstance(error, FileNotFoundError) else protocol.INVALID_PARAMS
    return TransferError(code, describe(error, path))


def _checked_params(params: Any) -> tuple[str, int]:
    if not isinstance(params, dict):
        raise TransferError(protocol.INVALID_PARAMS, "params must be a JSON object")
    path, size = params.get("path"), params.get("size", 0)
    if not isinstance(path, str) or not path:
        raise TransferError(protocol.INVALID_PARAMS, "path: a file path is required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TransferError(protocol.INVALID_PARAMS, "size must be a whole number of bytes")
    return resolve(path), size


def receive_file(params: Any, rfile: io.BufferedIOBase) -> dict[str, Any]:
    """Write the `size` bytes that follow the request to `path`, atomically: all of them, or none.

    The bytes go to a temporary file beside the target, renamed over it only when complete, so a
    cut-off upload never leaves a half-written file where the complete one should be.
    """
    path, size = _checked_params(params)
    directory = os.path.dirname(path) or "/"
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".cove-upload-")
    except OSError as error:
        _skip(rfile, size)
        raise _refuse(error, path) from None
    try:
        with os.fdopen(descriptor, "wb", buffering=0) as target:
            received = _copy(rfile, target, size)
        if received != size:
            raise TransferError(protocol.INVALID_PARAMS, f"upload cut short at {received} of {size} bytes")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return {"path": path, "size": size}


def _copy(source: io.BufferedIOBase, target: IO[bytes], size: int) -> int:
    buffer = memoryview(bytearray(CHUNK_BYTES))
    received = 0
    while received < size:
        count = source.readinto(buffer[: min(CHUNK_BYTES, size - received)])
        if not count:
            break
        target.write(buffer[:count])
        received += count
    return received


def _skip(rfile: io.BufferedIOBase, size: int) -> None:
    """Read and drop an upload that is refused, so the answer is read after the whole request."""
    while size > 0:
        chunk = rfile.read(min(CHUNK_BYTES, size))
        if not chunk:
            return
        size -= len(chunk)


def open_for_download(params: Any) -> tuple[BinaryIO, int]:
    """The file to send and its size; only regular files (a FIFO or device would never end)."""
    path, _ = _checked_params(params)
    try:
        # O_NONBLOCK: opening a FIFO that has no writer must not hang; it is refused just below.
        source = open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK))  # noqa: SIM115
    except OSError as error:
        raise _refuse(error, path) from None
    info = os.fstat(source.fileno())
    if not stat.S_ISREG(info.st_mode):
        source.close()
        raise TransferError(protocol.INVALID_PARAMS, f"{path} is not a regular file")
    return source, info.st_size


def send_file(connection: socket.socket, source: BinaryIO, size: int) -> None:
    with source:
        connection.sendfile(source, count=size)
