"""Where a context's files live: the `StorageBackend` protocol and the local-folder backend.

The S3-compatible backend (`s3_storage.S3Storage`) keeps the same promises behind the same protocol.

`LocalFolderStorage` keeps context `ctx-...` under `DATA_DIR/contexts/ctx-.../`. Every path is
relative to that folder (a leading "/" means its top); `..`, NUL and empty names are refused, and
the folder is walked one name at a time with O_NOFOLLOW from an open directory, so a symlink
planted inside it is never followed, wherever it sits. Writes go to a temporary file that is
renamed into place once complete, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from cove.errors import FileNotFound, InvalidArgument, InvalidState

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
CHUNK_BYTES = 256 * 1024
_NOFOLLOW_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class StoredFile:
    """One entry of a context folder."""

    path: str
    """From the context's top, with a leading "/"."""
    name: str
    is_folder: bool
    size: int
    created_at: datetime
    modified_at: datetime


def clean_path(raw: object, field: str = "path", *, allow_top: bool = False) -> tuple[str, ...]:
    """A context path's names; 400 naming `field` for anything that could leave the context."""
    if not isinstance(raw, str):
        raise InvalidArgument(f"{field} must be a string")
    if len(raw) > MAX_PATH_CHARS:
        raise InvalidArgument(f"{field} is longer than {MAX_PATH_CHARS} characters")
    if "\0" in raw:
        raise InvalidArgument(f"{field} must not contain NUL characters")
    names = tuple(name for name in raw.split("/") if name not in ("", "."))
    for name in names:
        if name == "..":
            raise InvalidArgument(f"{field} {raw!r} must not contain '..': paths stay inside the context")
        if len(name.encode(errors="surrogateescape")) > MAX_NAME_BYTES:
            raise InvalidArgument(f"{field} has a name longer than {MAX_NAME_BYTES} bytes")
    if not names and not allow_top:
        raise InvalidArgument(f"{field} must name a file in the context, such as 'data/notes.txt'")
    return names


class PendingFile(Protocol):
    """A file being written: it appears under its name only on `commit`."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> int: ...

    def abort(self) -> None: ...


def check_context_id(context_id: str) -> None:
    if not context_id or "/" in context_id or context_id in (".", ".."):
        raise InvalidArgument(f"invalid context id {context_id!r}")


def write_all(pending: PendingFile, chunks: Iterable[bytes]) -> int:
    """Write `chunks` into `pending` and commit it; nothing appears if an error cuts it short."""
    try:
        for chunk in chunks:
            pending.write(chunk)
    except BaseException:
        pending.abort()
        raise
    return pending.commit()


class StorageBackend(Protocol):
    """The files of contexts, wherever they are kept."""

    def open_upload(self, context_id: str, path: str) -> PendingFile: ...

    def put(self, context_id: str, path: str, chunks: Iterable[bytes]) -> int: ...

    def open_download(self, context_id: str, path: str) -> tuple[int, Iterator[bytes]]: ...

    def list(self, context_id: str, parent: str) -> list[StoredFile]: ...

    def delete(self, context_id: str, path: str) -> None: ...

    def delete_all(self, context_id: str) -> None: ...


UNFINISHED_PREFIX = ".cove-upload-"
"""Names of files being written; hidden from listings, renamed into place once whole."""


class _LocalPendingFile:
    def __init__(self, directory: int, name: str) -> None:
        self._directory = directory
        self._name = name
        self._temporary = f"{UNFINISHED_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(self._temporary, flags, 0o644, dir_fd=directory)
        self._file: BinaryIO = os.fdopen(descriptor, "wb")
        self._size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._size += len(chunk)

    def commit(self) -> int:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            try:
                os.rename(self._temporary, self._name, src_dir_fd=self._directory, dst_dir_fd=self._directory)
            except IsADirectoryError:
                raise InvalidState(f"{self._name!r} is a folder in the context; delete it first") from None
            self._done = True
            return self._size
        finally:
            self.abort()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self._done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temporary, dir_fd=self._directory)
            self._done = True
        if self._directory >= 0:
            os.close(self._directory)
            self._directory = -1


class LocalFolderStorage:
    """Contexts as folders under `root` (DATA_DIR/contexts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def remove_unfinished_uploads(self) -> int:
        """Delete the temporary files of uploads a crash cut off; answers how many.

        Only safe while nothing writes: the server calls it at startup, before it serves.
        """
        removed = 0
        for folder, _, names in os.walk(self.root, followlinks=False):
            for name in names:
                if name.startswith(UNFINISHED_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
                        removed += 1
        return removed

    def _context_folder(self, context_id: str, create: bool) -> int:
        check_context_id(context_id)
        top = os.open(self.root, _NOFOLLOW_DIRECTORY)
        try:
            return _descend(top, (context_id,), create)
        finally:
            os.close(top)

    def _folder(self, context_id: str, names: tuple[str, ...], create: bool) -> int:
        """An open descriptor of the folder `names` in the context, walked without following links."""
        top = self._context_folder(context_id, create)
        try:
            return _descend(top, names, create)
        finally:
            os.close(top)

    def open_upload(self, context_id: str, path: str) -> PendingFile:
        names = clean_path(path)
        directory = self._folder(context_id, names[:-1], create=True)
        try:
            return _LocalPendingFile(directory, names[-1])
        except BaseException:
            os.close(directory)
            raise

    def put(self, context_id: str, path: str, chunks: Iterable[bytes]) -> int:
        return write_all(self.open_upload(context_id, path), chunks)

    def open_download(self, context_id: str, path: str) -> tuple[int, Iterator[bytes]]:
        names = clean_path(path)
        directory = self._folder(context_id, names[:-1], create=False)
        try:
            descriptor = os.open(names[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
        except OSError:
            raise FileNotFound(f"no file {path!r} in the context") from None
        finally:
            os.close(directory)
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            os.close(descriptor)
            raise FileNotFound(f"{path!r} in the context is not a regular file")
        return info.st_size, _chunks(os.fdopen(descriptor, "rb"))

    def list(self, context_id: str, parent: str) -> list[StoredFile]:
        names = clean_path(parent, "parent folder path", allow_top=True)
        try:
            directory = self._folder(context_id, names, create=False)
        except FileNotFound:
            if names:
                raise
            return []
        prefix = "/" + "".join(f"{name}/" for name in names)
        found: list[StoredFile] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith(UNFINISHED_PREFIX):
                        continue
                    info = entry.stat(follow_symlinks=False)
                    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                        continue  # symlinks and the like are not the context's files
                    folder = stat.S_ISDIR(info.st_mode)
                    found.append(
                        StoredFile(
                            path=prefix + entry.name,
                            name=entry.name,
                            is_folder=folder,
                            size=0 if folder else info.st_size,
                            created_at=_moment(getattr(info, "st_birthtime", info.st_ctime)),
                            modified_at=_moment(info.st_mtime),
                        )
                    )
        finally:
            os.close(directory)
        return sorted(found, key=lambda item: item.name)

    def delete(self, context_id: str, path: str) -> None:
        names = clean_path(path)
        directory = self._folder(context_id, names[:-1], create=False)
        try:
            info = os.stat(names[-1], dir_fd=directory, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(names[-1], dir_fd=directory)
            else:
                os.unlink(names[-1], dir_fd=directory)
        except FileNotFoundError:
            raise FileNotFound(f"no file {path!r} in the context") from None
        finally:
            os.close(directory)

    def delete_all(self, context_id: str) -> None:
        check_context_id(context_id)
        folder = self.root / context_id
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)


def _descend(top: int, names: tuple[str, ...], create: bool) -> int:
    """Open `names` below the open folder `top` one at a time, never through a symlink."""
    current = os.dup(top)
    try:
        for name in names:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=current)
            try:
                following = os.open(name, _NOFOLLOW_DIRECTORY, dir_fd=current)
            except FileNotFoundError:
                raise FileNotFound(f"no folder {name!r} in the context") from None
            except (NotADirectoryError, OSError) as error:
                raise InvalidArgument(
                    f"{name!r} in the path is not a folder of the context ({error.strerror})"
                ) from None
            os.close(current)
            current = following
        return current
    except BaseException:
        os.close(current)
        raise


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
