"""`session.file_system`'s calls: the filesystem tools, and streamed upload and download.

Each function describes one call (see core.Call); the tool texts it reads are AgentBay's formats,
documented in docs/tools.md. Uploads and downloads are plain HTTP bodies, streamed by the client
through `LocalUpload` and `LocalDownload`, which hold the file-side logic both clients share.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cove.sdk.core import Call, ResultT, session_id_refusal, session_path
from cove.sdk.models import (
    BinaryFileContentResult,
    BoolResult,
    DirectoryEntry,
    DirectoryListResult,
    DownloadResult,
    FileChangeEvent,
    FileChangeResult,
    FileContentResult,
    FileInfoResult,
    FileSearchResult,
    MultipleFileContentResult,
    UploadResult,
)
from cove.sdk.tool_calls import tool_call

CHUNK_BYTES = 1024 * 1024
ProgressCallback = Callable[[int], None]
"""Called with the number of bytes moved so far."""


def _failed(result_type: type[ResultT], text: str) -> ResultT:
    return result_type(success=False, error_message=text or "the tool failed")


def _call(
    session_id: str,
    tool: str,
    arguments: dict[str, Any],
    result_type: type[ResultT],
    read: Callable[[str], ResultT],
) -> Call[ResultT]:
    """A filesystem tool call whose successful text `read` turns into the result."""

    def read_answer(text: str, is_error: bool) -> ResultT:
        return _failed(result_type, text) if is_error else read(text)

    return tool_call(session_id, tool, arguments, result_type, read_answer)


def _done(text: str) -> BoolResult:
    return BoolResult(success=True, data=True)


def create_directory(session_id: str, path: str) -> Call[BoolResult]:
    return _call(session_id, "create_directory", {"path": path}, BoolResult, _done)


def delete_file(session_id: str, path: str, recursive: bool) -> Call[BoolResult]:
    arguments: dict[str, Any] = {"path": path, "recursive": recursive}
    return _call(session_id, "delete_file", arguments, BoolResult, _done)


def move_file(session_id: str, source: str, destination: str) -> Call[BoolResult]:
    arguments = {"source": source, "destination": destination}
    return _call(session_id, "move_file", arguments, BoolResult, _done)


def edit_file(session_id: str, path: str, edits: list[dict[str, str]], dry_run: bool) -> Call[BoolResult]:
    """`data` is True; the diff of the change is not part of AgentBay's BoolResult."""
    arguments: dict[str, Any] = {"path": path, "edits": edits, "dryRun": dry_run}
    return _call(session_id, "edit_file", arguments, BoolResult, _done)


def write_file(session_id: str, path: str, content: str | bytes, mode: str) -> Call[BoolResult]:
    arguments: dict[str, Any] = {"path": path, "mode": mode}
    if isinstance(content, bytes):
        arguments.update(content=base64.b64encode(content).decode(), format="binary")
    else:
        arguments["content"] = content
    return _call(session_id, "write_file", arguments, BoolResult, _done)


def read_file(session_id: str, path: str) -> Call[FileContentResult]:
    return _call(
        session_id,
        "read_file",
        {"path": path},
        FileContentResult,
        lambda text: FileContentResult(success=True, content=text),
    )


def read_file_bytes(session_id: str, path: str) -> Call[BinaryFileContentResult]:
    def read(text: str) -> BinaryFileContentResult:
        content = base64.b64decode(text)
        return BinaryFileContentResult(success=True, content=content, size=len(content))

    arguments = {"path": path, "format": "binary"}
    return _call(session_id, "read_file", arguments, BinaryFileContentResult, read)


def _info_value(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    for number in (int, float):
        try:
            return number(raw)
        except ValueError:
            pass
    return raw


def get_file_info(session_id: str, path: str) -> Call[FileInfoResult]:
    def read(text: str) -> FileInfoResult:
        pairs = (line.partition(":") for line in text.splitlines() if ":" in line)
        info = {key.strip(): _info_value(value.strip()) for key, _, value in pairs}
        # `permissions: 644` reads as a number; it is an octal string, as AgentBay gives it.
        if "permissions" in info:
            info["permissions"] = str(info["permissions"])
        return FileInfoResult(success=True, file_info=info)

    return _call(session_id, "get_file_info", {"path": path}, FileInfoResult, read)


def list_directory(session_id: str, path: str) -> Call[DirectoryListResult]:
    def read(text: str) -> DirectoryListResult:
        entries = []
        for line in text.splitlines():
            kind, _, name = line.strip().partition(" ")
            if kind in ("[DIR]", "[FILE]"):
                entries.append(DirectoryEntry(name=name.strip(), is_directory=kind == "[DIR]"))
        return DirectoryListResult(success=True, entries=entries)

    return _call(session_id, "list_directory", {"path": path}, DirectoryListResult, read)


def read_multiple_files(session_id: str, paths: list[str]) -> Call[MultipleFileContentResult]:
    def read(text: str) -> MultipleFileContentResult:
        contents = {}
        for block in text.split("\n---\n"):
            head, _, body = block.partition("\n")
            if head.endswith(":"):
                contents[head[:-1]] = body[:-1] if body.endswith("\n") else body
            elif ": Error - " in head:
                path, _, error = head.partition(": ")
                contents[path] = error
        return MultipleFileContentResult(success=True, contents=contents)

    return _call(session_id, "read_multiple_files", {"paths": paths}, MultipleFileContentResult, read)


def search_files(
    session_id: str, path: str, pattern: str, exclude_patterns: list[str] | None
) -> Call[FileSearchResult]:
    def read(text: str) -> FileSearchResult:
        if text.strip() == "No matches found":
            return FileSearchResult(success=True)
        return FileSearchResult(success=True, matches=[line for line in text.splitlines() if line.strip()])

    arguments: dict[str, Any] = {"path": path, "pattern": pattern}
    if exclude_patterns:
        arguments["excludePatterns"] = ",".join(exclude_patterns)
    return _call(session_id, "search_files", arguments, FileSearchResult, read)


def get_file_change(session_id: str, path: str) -> Call[FileChangeResult]:
    def read(text: str) -> FileChangeResult:
        events = [
            FileChangeEvent(
                event_type=raw.get("eventType", ""),
                path=raw.get("path", ""),
                path_type=raw.get("pathType", ""),
            )
            for raw in json.loads(text)
        ]
        return FileChangeResult(success=True, events=events, raw_data=text)

    return _call(session_id, "get_file_change", {"path": path}, FileChangeResult, read)


# Streamed transfers


def _files_path(session_id: str) -> str:
    return f"{session_path(session_id)}/files"


@dataclass
class LocalUpload:
    """A local file sent as the body of `PUT /v1/sessions/{id}/files`, in chunks, with progress."""

    local_path: str
    progress: ProgressCallback | None = None
    size: int = field(init=False, default=0)
    call: Call[UploadResult] = field(init=False)

    @classmethod
    def of(
        cls, session_id: str, local_path: str, remote_path: str, progress: ProgressCallback | None
    ) -> LocalUpload:
        upload = cls(local_path, progress)
        refusal = session_id_refusal(session_id) or ("" if remote_path else "remote_path is required")
        try:
            upload.size = os.stat(local_path).st_size
        except OSError as error:
            refusal = refusal or f"cannot read {local_path}: {error.strerror}"
        upload.call = Call(
            method="PUT",
            path=_files_path(session_id),
            params={"path": remote_path},
            refusal=refusal,
            result_type=UploadResult,
            parse=lambda answer, rid: UploadResult(
                request_id=rid, success=True, path=answer["path"], bytes_sent=answer["size"]
            ),
        )
        return upload

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Length": str(self.size), "Content-Type": "application/octet-stream"}

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes; stops at the size announced, so a growing file cannot break the upload."""
        sent = 0
        with open(self.local_path, "rb") as source:
            while sent < self.size:
                chunk = source.read(min(CHUNK_BYTES, self.size - sent))
                if not chunk:
                    raise OSError(f"{self.local_path} shrank while it was being uploaded")
                sent += len(chunk)
                if self.progress:
                    self.progress(sent)
                yield chunk


@dataclass
class LocalDownload:
    """A download into a temporary file beside `local_path`, renamed over it only when complete."""

    session_id: str
    remote_path: str
    local_path: str
    overwrite: bool = True
    progress: ProgressCallback | None = None
    received: int = 0
    _file: BinaryIO | None = None
    _temporary: str = ""

    @property
    def call(self) -> Call[DownloadResult]:
        """The request; its parse is used only for error answers (a success is a raw body)."""
        refusal = session_id_refusal(self.session_id) or (
            "" if self.remote_path else "remote_path is required"
        )
        if not refusal and not self.overwrite and os.path.exists(self.local_path):
            refusal = f"{self.local_path} exists; pass overwrite=True to replace it"
        return Call(
            method="GET",
            path=_files_path(self.session_id),
            params={"path": self.remote_path},
            refusal=refusal,
            result_type=DownloadResult,
            parse=lambda answer, rid: DownloadResult(request_id=rid, success=True),
        )

    def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.local_path))
        descriptor, self._temporary = tempfile.mkstemp(dir=directory, prefix=".cove-download-")
        self._file = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.received += len(chunk)
        if self.progress:
            self.progress(self.received)

    def finish(self, headers: Mapping[str, str]) -> DownloadResult:
        """Keep the file if every byte arrived; otherwise remove it and say what was missing."""
        assert self._file is not None
        self._file.close()
        request_id = headers.get("x-request-id", "")
        length = headers.get("content-length")
        expected = int(length) if length and length.isdigit() else None
        if expected is not None and self.received != expected:
            os.unlink(self._temporary)
            return DownloadResult(
                request_id=request_id,
                success=False,
                code="ConnectionError",
                error_message=f"download cut short: {self.received} of {expected} bytes arrived",
            )
        os.replace(self._temporary, self.local_path)
        return DownloadResult(
            request_id=request_id,
            success=True,
            http_status_code=200,
            path=self.remote_path,
            local_path=self.local_path,
            bytes_received=self.received,
        )

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            os.unlink(self._temporary)


class DirectoryWatcher(threading.Thread):
    """Polls `get_file_change` and hands each non-empty batch of events to a callback.

    Shaped as AgentBay's watcher: a thread, not yet started, with `ready_event` (set once the
    first poll has taken the baseline) and `stop_event` (set it to end the thread).
    """

    def __init__(
        self,
        poll: Callable[[], FileChangeResult],
        callback: Callable[[list[FileChangeEvent]], None],
        interval: float,
        stop_event: threading.Event | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name="cove-watch-directory", daemon=True)
        self.poll, self.callback, self.interval, self.on_stop = poll, callback, interval, on_stop
        self.stop_event = stop_event or threading.Event()
        self.ready_event = threading.Event()

    def run(self) -> None:
        try:
            while True:
                changes = self.poll()
                self.ready_event.set()
                if changes.success and changes.events:
                    self.callback(changes.events)
                if self.stop_event.wait(self.interval):
                    return
        finally:
            if self.on_stop:
                self.on_stop()
