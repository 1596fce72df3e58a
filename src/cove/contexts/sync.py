"""Moving a context's files into a session's folder and back, as tar streams.

`export_tar` writes what a sync downloads: the context's files its white lists admit, with archives
unpacked as its extract policy says (archives.py). `import_tar` writes what an upload brings back.
With uploadMode Archive, the files an upload brings (but those of archiveExcludePaths) are kept as
one zip, ARCHIVE_NAME at the context's top, which a download unpacks into the folder's top again.
The tar stream packed in the sandbox (or from its layer on the host) is untrusted: only regular
files are written, by name through the storage backend (which refuses '..', never follows
symlinks, and shows a file only once it is whole); symlinks, absolute names, '..' and special files
are skipped. The policy itself is read in policy.py.
"""

from __future__ import annotations

import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from cove.contexts import archives
from cove.contexts.policy import ContextSync
from cove.contexts.storage import StorageBackend, clean_path
from cove.contexts.transfer_limits import LEFT_OUT_HEADER
from cove.errors import InvalidArgument, InvalidState

REASON_CHARS = 200
"""A left-out member's reason is cut to this: it comes from the sandbox."""
ARCHIVE_NAME = "sync_archive.zip"
"""The zip a sync with uploadMode Archive keeps its folder in, at the context's top."""
ARCHIVE_PATH = "/" + ARCHIVE_NAME


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


def export_tar(
    storage: StorageBackend,
    sync: ContextSync,
    target: IO[bytes],
    spool: Callable[[], IO[bytes]] = tempfile.TemporaryFile,
) -> None:
    """Write the context's files that `sync` downloads into `target` as a tar; archives to unpack
    are copied into `spool` files first (the server's are in DATA_DIR/tmp)."""
    with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in _walk(storage, sync.context_id):
            relative = path.lstrip("/")
            if not sync.admits(relative):
                continue
            size, chunks = storage.open_download(sync.context_id, path)
            if sync.archive and path == ARCHIVE_PATH:
                unpack_to: str | None = ""  # the folder, as it was packed
            else:
                unpack_to = archives.destination(relative, sync.extract_here) if sync.extract else None
            if unpack_to is None:
                _add_file(archive, relative, size, _ChunkReader(chunks))
                continue
            with spool() as copy:
                for chunk in chunks:
                    copy.write(chunk)
                copy.seek(0)
                unpacked = archives.add_members(copy, relative, unpack_to, archive, sync.admits, spool=spool)
                if not (unpacked and (sync.delete_archive or path == ARCHIVE_PATH)):
                    copy.seek(0)
                    _add_file(archive, relative, size, copy)


def _add_file(archive: tarfile.TarFile, name: str, size: int, content: Any) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode = size, 0o644
    archive.addfile(member, content)


class _ChunkReader:
    """A file-like view of a chunk iterator for tarfile, which reads 16 KiB at a time: each read
    copies only what it returns, never the rest of a (1 MiB) chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        pieces: list[bytes] = []
        wanted = size
        while wanted != 0:
            if self._offset >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._offset = chunk, 0
                continue
            end = len(self._chunk) if wanted < 0 else self._offset + wanted
            piece = self._chunk[self._offset : end]
            self._offset += len(piece)
            wanted = wanted if wanted < 0 else wanted - len(piece)
            pieces.append(piece)
        return b"".join(pieces)


@dataclass(frozen=True)
class ImportReport:
    written: int
    skipped: list[str]
    left_out: list[str]
    """Files not uploaded for a limit (sparse, over the per-file cap), each with why."""


def import_tar(
    storage: StorageBackend,
    sync: ContextSync,
    source: IO[bytes],
    max_file_bytes: int | None = None,
    spool: Callable[[], IO[bytes]] = tempfile.TemporaryFile,
) -> ImportReport:
    """Write the regular files of an untrusted tar that `sync` admits into its context, each atomically.

    Members with absolute names or '..', symlinks, hard links and special files are skipped; members
    the packer marked left out (LEFT_OUT_HEADER) or over `max_file_bytes` are reported, and their
    context files kept as they were; with `sync.sync_deletions`, other admitted context files the tar
    does not hold are removed afterwards.
    """
    context_id = sync.context_id
    written: set[str] = set()
    skipped: list[str] = []
    left_out: list[str] = []
    folders = _folders(storage, context_id)
    with (
        spool() as packed,
        zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zipped,
        tarfile.open(fileobj=source, mode="r|") as archive,
    ):
        for member in archive:
            if member.isdir():
                continue
            reason = member.pax_headers.get(LEFT_OUT_HEADER, "")[:REASON_CHARS]  # the sandbox's text
            if member.isreg() and (reason or (max_file_bytes is not None and member.size > max_file_bytes)):
                left_out.append(f"{member.name} ({reason or f'{member.size} bytes, over the per-file cap'})")
                written.add("/" + member.name.lstrip("/"))  # not uploaded, but not deleted either
                continue
            if not member.isreg() or member.name.startswith("/") or ".." in member.name.split("/"):
                skipped.append(member.name)
                continue
            try:
                names = clean_path(member.name)
            except InvalidArgument:
                skipped.append(member.name)
                continue
            if not sync.admits("/".join(names)):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                skipped.append(member.name)
                continue
            path = "/" + "/".join(names)
            if sync.archived("/".join(names)):
                with zipped.open("/".join(names), "w", force_zip64=True) as member_file:
                    for piece in _pieces(handle):
                        member_file.write(piece)
                continue
            if path in folders:  # a folder in the context where the session now has a file
                if not sync.sync_deletions:
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
        if sync.archive:
            zipped.close()
            packed.seek(0)
            storage.put(context_id, ARCHIVE_PATH, _pieces(packed))
            written.add(ARCHIVE_PATH)
    if sync.sync_deletions:
        for path in _walk(storage, context_id):
            if path not in written and sync.admits(path.lstrip("/")):
                storage.delete(context_id, path)
    return ImportReport(len(written) - len(left_out), skipped, left_out)


def _pieces(handle: IO[bytes]) -> Iterator[bytes]:
    while piece := handle.read(1024 * 1024):
        yield piece
