"""Streamed file transfers between the host and the sandbox, as raw bytes beside one JSON line.

A tool answer is a JSON line, so a 1 GiB file cannot travel as one. An upload sends its request
line and then exactly `size` raw bytes, or, when its size is not known in advance (a body streamed
as it is made), `chunked` frames: a big-endian u32 length and that many bytes, ended by an empty
frame, so a cut-off upload is still told from a complete one. A download answers a line with the
size and then the raw bytes (sent with sendfile). Neither side holds a whole file in memory. Both
run as the session user inside the sandbox, so its own permissions decide what may be read or
written.
"""

import io
import os
import socket
import stat
import tarfile
import tempfile
from typing import IO, Any, BinaryIO

from . import protocol
from .tools import InvalidArguments
from .tools.files import describe, resolve

CHUNK_BYTES = 1024 * 1024
UPLOAD_PREFIX = ".cove-upload-"
"""The name of an upload's temporary file, renamed over the file once complete."""
MAX_FRAME_BYTES = 16 * 1024 * 1024


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
    try:
        return resolve(path), size
    except InvalidArguments as error:
        raise TransferError(protocol.INVALID_PARAMS, str(error)) from None


def receive_file(params: Any, rfile: io.BufferedIOBase) -> dict[str, Any]:
    """Write the `size` bytes (or the `chunked` frames) that follow the request to `path`,
    atomically: all of them, or none.

    The bytes go to a temporary file beside the target, renamed over it only when complete, so a
    cut-off upload never leaves a half-written file where the complete one should be.
    """
    path, size = _checked_params(params)
    chunked = isinstance(params, dict) and params.get("chunked") is True
    directory = os.path.dirname(path) or "/"
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        mode = _mode_for(path)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=UPLOAD_PREFIX)
        os.fchmod(descriptor, mode)
    except OSError as error:
        if chunked:
            _copy_frames(rfile, None)
        else:
            _skip(rfile, size)
        raise _refuse(error, path) from None
    try:
        with os.fdopen(descriptor, "wb", buffering=0) as target:
            if chunked:
                size = _copy_frames(rfile, target)
            elif (received := _copy(rfile, target, size)) != size:
                raise TransferError(
                    protocol.INVALID_PARAMS, f"upload cut short at {received} of {size} bytes"
                )
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return {"path": path, "size": size}


def _mode_for(path: str) -> int:
    """As write_file's: a replaced file keeps its mode bits, a new one gets what the umask leaves of
    0o666 (mkstemp's own 0o600 would hide an uploaded file from the session's other users)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read rather than set (os.umask would change it for every thread)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _copy_frames(source: io.BufferedIOBase, target: IO[bytes] | None) -> int:
    """Copy frames until the empty one (to nowhere without a target); answers the bytes copied."""
    received = 0
    while True:
        header = source.read(protocol.FRAME_HEADER.size)
        if len(header) < protocol.FRAME_HEADER.size:
            raise TransferError(protocol.INVALID_PARAMS, f"upload cut short after {received} bytes")
        (length,) = protocol.FRAME_HEADER.unpack(header)
        if length == 0:
            return received
        if length > MAX_FRAME_BYTES:
            raise TransferError(
                protocol.INVALID_PARAMS, f"a frame of {length} bytes is over {MAX_FRAME_BYTES}"
            )
        copied = _copy(source, target, length)
        if copied != length:
            raise TransferError(protocol.INVALID_PARAMS, f"upload cut short after {received + copied} bytes")
        received += length


def _copy(source: io.BufferedIOBase, target: IO[bytes] | None, size: int) -> int:
    buffer = memoryview(bytearray(CHUNK_BYTES))
    received = 0
    while received < size:
        count = source.readinto(buffer[: min(CHUNK_BYTES, size - received)])
        if not count:
            break
        if target is not None:
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


def open_for_pack(params: Any) -> tuple[str, int | None]:
    """The folder `files/pack` will send, and the largest file it may hold (`max_file_bytes`, none
    if not given); refused before the answer line if it is not a folder."""
    path, _ = _checked_params(params)
    cap = params.get("max_file_bytes")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
        raise TransferError(protocol.INVALID_PARAMS, "max_file_bytes must be a whole number of bytes")
    try:
        info = os.lstat(path)
    except OSError as error:
        raise _refuse(error, path) from None
    if not stat.S_ISDIR(info.st_mode):
        raise TransferError(protocol.INVALID_PARAMS, f"{path} is not a folder")
    return path, cap


def _left_out(info: os.stat_result, max_file_bytes: int | None) -> str:
    """Why a regular file is not packed, or "" if it is: sparse (its holes would be sent as zeros,
    costing the host far more than the file costs the sandbox), or over the host's per-file cap."""
    if info.st_blocks * 512 < info.st_size:
        return f"sparse file of {info.st_size} bytes with {info.st_blocks * 512} on disk"
    if max_file_bytes is not None and info.st_size > max_file_bytes:
        return f"{info.st_size} bytes, over COVE_MAX_SYNC_FILE_BYTES ({max_file_bytes})"
    return ""


def send_pack(wfile: io.BufferedIOBase, path: str, max_file_bytes: int | None = None) -> None:
    """Write the folder at `path` as an uncompressed tar stream, names relative to it.

    Symlinks are stored as symlinks, never followed; entries the session user cannot read, and
    sockets, FIFOs and devices, are left out rather than failing the whole pack. Sparse files and
    files over `max_file_bytes` are sent as empty members with a LEFT_OUT_HEADER saying why, so the
    host can report them.
    """
    with tarfile.open(fileobj=wfile, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for top, folders, files in os.walk(path, followlinks=False):
            for name in sorted(folders) + sorted(files):
                full = os.path.join(top, name)
                try:
                    info = os.lstat(full)
                    if not (
                        stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode)
                    ):
                        continue
                    member = archive.gettarinfo(full, os.path.relpath(full, path))
                    reason = _left_out(info, max_file_bytes) if member.isreg() else ""
                    if reason:
                        member.size, member.pax_headers = 0, {protocol.LEFT_OUT_HEADER: reason}
                        archive.addfile(member)
                    elif member.isreg():
                        with open(full, "rb") as source:
                            archive.addfile(member, source)
                    else:
                        archive.addfile(member)
                except OSError:
                    continue


def _unsafe_member(member: tarfile.TarInfo, links: set[str]) -> str:
    """Why `member` may not be unpacked, or "" if it may: only files, folders and inner symlinks."""
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        return f"{name!r} is absolute or has '..'"
    if not (member.isreg() or member.isdir() or member.issym()):
        return f"{name!r} is not a file, folder or symlink"
    if any(name.startswith(link + "/") for link in links):
        return f"{name!r} is below a symlink of the archive"
    if member.issym():
        target = member.linkname
        inside = os.path.normpath(os.path.join(os.path.dirname(name), target))
        if target.startswith("/") or inside == ".." or inside.startswith("../"):
            return f"{name!r} links outside the folder"
    return ""


def receive_pack(params: Any, rfile: io.BufferedIOBase) -> dict[str, Any]:
    """Unpack the `size`-byte tar stream that follows the request into the folder `path`.

    Every member is checked first: absolute names, '..', links pointing outside, hard links and
    special files refuse the whole stream, so nothing is unpacked from an unsafe one.
    """
    path, size = _checked_params(params)
    with tempfile.TemporaryFile() as spool:
        received = _copy(rfile, spool, size)
        if received != size:
            raise TransferError(protocol.INVALID_PARAMS, f"upload cut short at {received} of {size} bytes")
        spool.seek(0)
        # Members are checked above; newer Pythons would otherwise warn or apply their own filter.
        trusted: dict[str, Any] = (
            {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        )
        try:
            with tarfile.open(fileobj=spool, mode="r:") as archive:
                members = archive.getmembers()
                links = {os.path.normpath(member.name) for member in members if member.issym()}
                for member in members:
                    reason = _unsafe_member(member, links)
                    if reason:
                        raise TransferError(protocol.INVALID_PARAMS, f"refused the archive: {reason}")
                os.makedirs(path, exist_ok=True)
                for member in members:
                    member.mode = (member.mode & 0o777) or (0o755 if member.isdir() else 0o644)
                    member.uid, member.gid = os.getuid(), os.getgid()
                    archive.extract(member, path, set_attrs=not member.issym(), numeric_owner=True, **trusted)
        except tarfile.TarError as error:
            raise TransferError(protocol.INVALID_PARAMS, f"not a valid tar stream: {error}") from None
        except OSError as error:
            raise _refuse(error, path) from None
    return {"path": path, "count": len(members)}
