"""Archives found in a context, unpacked on download (AgentBay's `extractPolicy`).

A context file named `*.zip`, `*.tar`, `*.tar.gz`/`*.tgz`, `*.tar.bz2`/`*.tbz2` or `*.tar.xz`/`*.txz`
is opened on the host and its regular files are added to the tar that goes into the session, at
`<folder>/<name without suffix>/...` (or `<folder>/...` with `extractToCurrentFolder`). Nothing is
written to the host's disk but spool files: the archive is untrusted, so absolute names, '..',
links and special members are skipped, and each member is read whole before it is added, so a
damaged archive never leaves half a member in the stream. An archive whose members unpack to more
than `MAX_UNPACKED_BYTES` (a zip bomb), or that needs a password or an unknown compression, is
treated like a damaged one: it goes into the session as it is.
"""

from __future__ import annotations

import logging
import lzma
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import IO

from cove.contexts.storage import clean_path
from cove.errors import InvalidArgument

log = logging.getLogger(__name__)
CHUNK_BYTES = 1024 * 1024
SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
MAX_UNPACKED_BYTES = 4 << 30
"""What one archive's members may add up to, unpacked: spooled on the host, so a bomb must stop early."""


class TooLarge(Exception):
    """The archive unpacks to more than its allowance."""


_BROKEN = (
    zipfile.BadZipFile,
    tarfile.TarError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    TooLarge,
    RuntimeError,  # zipfile: an encrypted member needs a password
    NotImplementedError,  # zipfile: a compression method it does not know
)


def destination(relative: str, here: bool) -> str | None:
    """Where the archive at `relative` unpacks to ("" is the synced folder's top), or None if it is none."""
    folder, _, name = relative.rpartition("/")
    suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    if here or not stem:
        return folder
    return f"{folder}/{stem}" if folder else stem


def add_members(
    archive: IO[bytes],
    name: str,
    target: str,
    out: tarfile.TarFile,
    admits: Callable[[str], bool],
    limit: int = MAX_UNPACKED_BYTES,
    spool: Callable[[], IO[bytes]] = tempfile.TemporaryFile,
) -> bool:
    """Add the regular files of the seekable `archive` to `out` below `target`; False if it is
    unreadable or unpacks to more than `limit` bytes. Each member is unpacked into a `spool` file
    first (the server's are in DATA_DIR/tmp)."""
    try:
        for member_name, opened in _members(archive, name):
            path = _inside(member_name)
            full = f"{target}/{path}" if target and path else path
            if not path or not admits(full):
                continue
            with opened() as source, spool() as unpacked:
                limit -= _copy_at_most(source, unpacked, limit)
                member = tarfile.TarInfo(full)
                member.size, member.mode = unpacked.tell(), 0o644
                unpacked.seek(0)
                out.addfile(member, unpacked)
    except _BROKEN as error:
        log.warning("archive %s in a context could not be unpacked: %s", name, error)
        return False
    return True


def _copy_at_most(source: IO[bytes], target: IO[bytes], limit: int) -> int:
    """Copy `source` into `target`; TooLarge as soon as it is longer than `limit` (a header may lie)."""
    copied = 0
    while chunk := source.read(min(CHUNK_BYTES, limit - copied + 1)):
        copied += len(chunk)
        if copied > limit:
            raise TooLarge("the archive unpacks to more than its allowance (MAX_UNPACKED_BYTES)")
        target.write(chunk)
    return copied


def _members(
    archive: IO[bytes], name: str
) -> Iterator[tuple[str, Callable[[], AbstractContextManager[IO[bytes]]]]]:
    if name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                mode = info.external_attr >> 16
                if not info.is_dir() and stat.S_IFMT(mode) in (0, stat.S_IFREG):  # no links or devices
                    yield info.filename, partial(zipped.open, info)
        return
    with tarfile.open(fileobj=archive, mode="r:*") as tarred:
        for member in tarred:
            if member.isreg():
                yield member.name, partial(_extracted, tarred, member)


@contextmanager
def _extracted(tarred: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[IO[bytes]]:
    handle = tarred.extractfile(member)
    if handle is None:
        raise tarfile.TarError(f"{member.name} has no content")
    with handle:
        yield handle


def _inside(member_name: str) -> str:
    """The member's path inside the archive as "a/b", or "" when it is absolute or has '..'."""
    if member_name.startswith("/"):
        return ""
    try:
        return "/".join(clean_path(member_name))
    except InvalidArgument:
        return ""
