"""Apply one container image layer (a tar stream) onto a root filesystem, trusting nothing in it.

A layer adds, replaces and, through whiteouts, removes files of the layers below it: `.wh.NAME`
removes NAME, `.wh..wh..opq` empties its folder of everything from lower layers. Members that
would reach outside the root filesystem (absolute names, `..`, hard links leaving it, paths through
a symlink, whiteouts of `.` or `..`) fail the whole import; device nodes are skipped, since a
sandbox gets its own /dev. File owners are kept as numbers (above the sandbox's 65536 IDs they
become nobody's). Setuid and setgid bits of files are dropped: sandboxes run with no_new_privs, so
they would grant nothing there, while on the host they would be root's (or the sandbox root's)
setuid programs for anyone who reaches the image folder. A `Budget` caps what one import may write
(bytes and entries), so a decompression bomb fails instead of filling the host's disk.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cove.errors import InvalidArgument

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
NOBODY = 65534
SANDBOX_IDS = 65536
COPY_CHUNK = 1 << 20
SETID_BITS = 0o6000
MAX_IMPORT_BYTES = 64 << 30
"""What one image import may write, all layers together (the largest common images are a few GiB)."""
MAX_IMPORT_ENTRIES = 4_000_000


class LayerStream(Protocol):
    """What tarfile asks of a file object (it only reads ours): a tar, gzip or zstd stream."""

    def read(self, size: int, /) -> bytes: ...
    def write(self, data: bytes, /) -> object: ...
    def tell(self) -> int: ...
    def seek(self, position: int, /) -> object: ...
    def close(self) -> object: ...


class UnsafeLayer(InvalidArgument):
    """A layer member that could write outside the image; the import is refused."""


class Budget:
    """What an import may still write; refused once its layers ask for more (a decompression bomb)."""

    def __init__(self, max_bytes: int = MAX_IMPORT_BYTES, max_entries: int = MAX_IMPORT_ENTRIES) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.bytes_left, self.entries_left = max_bytes, max_entries

    def spend(self, member: tarfile.TarInfo) -> None:
        self.bytes_left -= member.size if member.isreg() else 0
        self.entries_left -= 1
        if self.bytes_left < 0 or self.entries_left < 0:
            raise InvalidArgument(
                f"the image unpacks to more than {self.max_bytes} bytes or {self.max_entries} files "
                "(a decompression bomb?); the import is refused"
            )


def safe_name(name: str) -> str:
    """A member name as a path relative to the root ("" for the root), or UnsafeLayer."""
    if name.startswith("/"):
        raise UnsafeLayer(f"layer member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"layer member {name!r} climbs out with '..'")
    return "/".join(parts)


def apply_layer(
    stream: LayerStream, rootfs: Path, progress: Callable[[str], None], budget: Budget | None = None
) -> None:
    """Unpack the uncompressed tar `stream` over `rootfs`, whiteouts included."""
    budget = budget or Budget()
    added: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as layer:
        for member in layer:
            budget.spend(member)
            name = safe_name(member.name)
            if not name:
                continue
            parent, base = posixpath.split(name)
            folder = _folder(rootfs, parent, member.name)
            if base == OPAQUE:
                _clear_lower(folder, parent, added)
            elif base.startswith(WHITEOUT):
                hidden = base.removeprefix(WHITEOUT)
                if hidden in ("", ".", ".."):  # `.wh..` would remove the folder above `folder`
                    raise UnsafeLayer(f"layer member {member.name!r} whites out {hidden!r}, not a name")
                _remove(folder / hidden)
            elif member.ischr() or member.isblk():
                progress(f"    skipped device node /{name}")
            else:
                _add(layer, member, rootfs, folder / base)
                added.add(name)


def _folder(rootfs: Path, relative: str, member: str) -> Path:
    """The existing or new real folder `relative` under rootfs; never through a symlink."""
    path = rootfs
    for part in relative.split("/") if relative else []:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            path.mkdir(mode=0o755)
            continue
        if stat.S_ISLNK(mode):
            raise UnsafeLayer(f"layer member {member!r} goes through the symlink /{path.relative_to(rootfs)}")
        if not stat.S_ISDIR(mode):
            raise UnsafeLayer(f"layer member {member!r} is below /{path.relative_to(rootfs)}, not a folder")
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def _clear_lower(folder: Path, relative: str, added: set[str]) -> None:
    """Remove what lower layers put in `folder`, keeping what this layer added."""
    for child in list(folder.iterdir()):
        name = f"{relative}/{child.name}" if relative else child.name
        if name not in added:
            _remove(child)
        elif child.is_dir() and not child.is_symlink():
            _clear_lower(child, name, added)


def _add(layer: tarfile.TarFile, member: tarfile.TarInfo, rootfs: Path, target: Path) -> None:
    if member.isdir() and target.is_dir() and not target.is_symlink():
        target.chmod(member.mode & 0o7777)  # a folder lower layers made: its contents stay
    else:
        _remove(target)
        if member.isdir():
            target.mkdir(mode=0o700)
        elif member.isreg():
            _write_file(layer, member, target)
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            linked = safe_name(member.linkname)
            source = _folder(rootfs, posixpath.dirname(linked), member.name) / posixpath.basename(linked)
            if not linked or (source.is_dir() and not source.is_symlink()):
                raise UnsafeLayer(f"layer member {member.name!r} hard-links to a folder")
            os.link(source, target, follow_symlinks=False)
            return  # a hard link shares its source's owner, mode and time
        elif member.isfifo():
            os.mkfifo(target)
        else:
            raise UnsafeLayer(f"layer member {member.name!r} has an unknown type {member.type!r}")
    uid = member.uid if member.uid < SANDBOX_IDS else NOBODY
    gid = member.gid if member.gid < SANDBOX_IDS else NOBODY
    os.lchown(target, uid, gid)
    if not member.issym():
        mode = member.mode & 0o7777
        target.chmod(mode if member.isdir() else mode & ~SETID_BITS)
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


def _write_file(layer: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = layer.extractfile(member)
    assert source is not None  # a regular file always has contents
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(descriptor, "wb") as output:
        shutil.copyfileobj(source, output, COPY_CHUNK)
