"""Context syncs: a context's files copied into a session's folder at create, and back at delete.

A sync is `{context_id, path, policy}`. The policy is AgentBay's SyncPolicy in its camelCase JSON
(`uploadPolicy`, `downloadPolicy`, ...); Cove honours `downloadPolicy.autoDownload` (the files are
unpacked into `path` before create returns) and `uploadPolicy.autoUpload` with the strategy
`UploadBeforeResourceRelease` (`path` is packed into the context before the sandbox is destroyed),
and `deletePolicy.syncLocalFile` (files gone from `path` are removed from the context on upload).
Any other setting that differs from the SDK's default is refused, not ignored.

The tar stream packed in the sandbox is untrusted: only regular files and folders are written, by
name through the storage backend (which refuses '..' and never follows symlinks); symlinks,
absolute names, '..' and special files are skipped.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

from cove.contexts.storage import StorageBackend, clean_path
from cove.errors import CoveError, InvalidArgument, InvalidState

MAX_SYNCS = 16
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")
DEFAULT_POLICY: dict[str, Any] = {
    "uploadPolicy": {
        "autoUpload": True,
        "uploadStrategy": "UploadBeforeResourceRelease",
        "uploadMode": "File",
    },
    "downloadPolicy": {"autoDownload": True, "downloadStrategy": "DownloadAsync"},
    "deletePolicy": {"syncLocalFile": True},
    "extractPolicy": {"extract": True, "deleteSrcFile": True, "extractToCurrentFolder": False},
    "recyclePolicy": {"lifecycle": "Lifecycle_Forever", "paths": [""]},
    "bwList": {
        "whiteLists": [{"path": "", "excludePaths": [], "isPathRegex": False, "isExcludeRegex": False}]
    },
}
"""The SDK's `SyncPolicy()` as JSON: values Cove accepts for the parts it does not implement."""


class NotImplementedPolicy(CoveError):
    code = "NotSupported"
    http_status = 501


@dataclass(frozen=True)
class ContextSync:
    """One checked sync of a session."""

    context_id: str
    path: str
    auto_download: bool = True
    auto_upload: bool = True
    sync_deletions: bool = True

    def policy_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ContextSync:
        return cls(**json.loads(row["policy"]))


def check_sync_path(raw: object, field: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise InvalidArgument(f"{field} must be an absolute path in the session, such as '/home/user/data'")
    if "\0" in raw or ".." in raw.split("/"):
        raise InvalidArgument(f"{field} {raw!r} must not contain '..' or NUL characters")
    path = posixpath.normpath(raw)
    if path == "/" or any(path == root or path.startswith(root + "/") for root in FORBIDDEN_ROOTS):
        raise InvalidArgument(
            f"{field} {raw!r} must be a folder of the session's own files, not / or {FORBIDDEN_ROOTS}"
        )
    return path


def _part(policy: dict[str, Any], name: str, field: str) -> dict[str, Any]:
    value = policy.get(name) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}.{name} must be an object")
    return value


def _flag(part: dict[str, Any], key: str, field: str) -> bool:
    value = part.get(key, True)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field}.{key} must be true or false")
    return value


def check_sync(raw: object, field: str) -> ContextSync:
    """One sync from its JSON (`context_id`, `path`, `policy`: a SyncPolicy object or its JSON string)."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{field} must be an object with context_id, path and policy")
    context_id = raw.get("context_id")
    if not isinstance(context_id, str) or not context_id:
        raise InvalidArgument(f"{field}.context_id is required: the id of one of your contexts")
    path = check_sync_path(raw.get("path"), f"{field}.path")
    policy = raw.get("policy") or {}
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            raise InvalidArgument(f"{field}.policy is not valid JSON") from None
    if not isinstance(policy, dict):
        raise InvalidArgument(f"{field}.policy must be a SyncPolicy object")
    where = f"{field}.policy"
    for name, value in policy.items():
        if name not in DEFAULT_POLICY and value:
            raise NotImplementedPolicy(f"{where}.{name} is not supported by this Cove server yet")
    upload = _part(policy, "uploadPolicy", where)
    download = _part(policy, "downloadPolicy", where)
    delete = _part(policy, "deletePolicy", where)
    for name, default in DEFAULT_POLICY.items():
        given = _part(policy, name, where)
        for key, value in given.items():
            if key in ("autoUpload", "autoDownload", "syncLocalFile"):
                continue
            if key not in default or value != default[key]:
                raise NotImplementedPolicy(
                    f"{where}.{name}.{key}={json.dumps(value)} is not supported by this Cove server yet; "
                    f"it syncs whole folders, on create and before release ({json.dumps(default.get(key))})"
                )
    return ContextSync(
        context_id=context_id,
        path=path,
        auto_download=_flag(download, "autoDownload", f"{where}.downloadPolicy"),
        auto_upload=_flag(upload, "autoUpload", f"{where}.uploadPolicy"),
        sync_deletions=_flag(delete, "syncLocalFile", f"{where}.deletePolicy"),
    )


def check_syncs(raw: object, field: str = "context_syncs") -> list[ContextSync]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidArgument(f"{field} must be a list of {{context_id, path, policy}}")
    if len(raw) > MAX_SYNCS:
        raise InvalidArgument(f"{field} has more than {MAX_SYNCS} items")
    syncs = [check_sync(item, f"{field}[{n}]") for n, item in enumerate(raw)]
    paths = [sync.path for sync in syncs]
    for n, path in enumerate(paths):
        if any(path == other or path.startswith(other + "/") for m, other in enumerate(paths) if m != n):
            raise InvalidArgument(f"{field}[{n}].path {path!r} overlaps another sync's path")
    return syncs


def _walk(storage: StorageBackend, context_id: str, parent: str = "/") -> list[str]:
    found: list[str] = []
    for entry in storage.list(context_id, parent):
        found.extend(_walk(storage, context_id, entry.path) if entry.is_folder else [entry.path])
    return found


def _folders(storage: StorageBackend, context_id: str, parent: str = "/") -> set[str]:
    found: set[str] = set()
    for entry in storage.list(context_id, parent):
        if entry.is_folder:
            found |= {entry.path} | _folders(storage, context_id, entry.path)
    return found


def export_tar(storage: StorageBackend, context_id: str, target: IO[bytes]) -> int:
    """Write every file of the context into `target` as a tar; answers how many files."""
    paths = _walk(storage, context_id)
    with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in paths:
            size, chunks = storage.open_download(context_id, path)
            member = tarfile.TarInfo(path.lstrip("/"))
            member.size, member.mode = size, 0o644
            archive.addfile(member, _ChunkReader(chunks))
    return len(paths)


class _ChunkReader:
    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        taken = self._buffer if size < 0 else self._buffer[:size]
        self._buffer = self._buffer[len(taken) :]
        return taken


@dataclass(frozen=True)
class ImportReport:
    written: int
    skipped: list[str]


def import_tar(
    storage: StorageBackend, context_id: str, source: IO[bytes], sync_deletions: bool
) -> ImportReport:
    """Write the regular files of an untrusted tar into the context, each atomically by the backend.

    Members with absolute names or '..', symlinks, hard links and special files are skipped; with
    `sync_deletions`, context files the tar does not hold are removed afterwards.
    """
    written: set[str] = set()
    skipped: list[str] = []
    folders = _folders(storage, context_id)
    with tarfile.open(fileobj=source, mode="r|") as archive:
        for member in archive:
            if member.isdir():
                continue
            if not member.isreg() or member.name.startswith("/") or ".." in member.name.split("/"):
                skipped.append(member.name)
                continue
            try:
                names = clean_path(member.name)
            except InvalidArgument:
                skipped.append(member.name)
                continue
            handle = archive.extractfile(member)
            if handle is None:
                skipped.append(member.name)
                continue
            path = "/" + "/".join(names)
            if path in folders:  # a folder in the context where the session now has a file
                if not sync_deletions:
                    skipped.append(member.name)
                    continue
                storage.delete(context_id, path)
                folders.discard(path)
            try:
                storage.put(context_id, path, _pieces(handle))
            except (InvalidArgument, InvalidState):
                skipped.append(member.name)  # a folder of the path is a file in the context, or the like
                continue
            written.add(path)
    if sync_deletions:
        for path in _walk(storage, context_id):
            if path not in written:
                storage.delete(context_id, path)
    return ImportReport(len(written), skipped)


def _pieces(handle: IO[bytes]) -> Iterator[bytes]:
    while piece := handle.read(1024 * 1024):
        yield piece
