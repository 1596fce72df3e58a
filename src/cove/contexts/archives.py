"""Archives found in a context, unpacked on download (AgentBay's `extractPolicy`).

A context file named `*.zip`, `*.tar`, `*.tar.gz`/`*.tgz`, `*.tar.bz2`/`*.tbz2` or `*.tar.xz`/`*.txz`
is opened on the host and its regular files are added to the tar that goes into the session, at
`<folder>/<name without suffix>/...` (or `<folder>/...` with `extractToCurrentFolder`). Nothing is
written to the host's disk but spool files: the archive is untrusted, so absolute names, '..',
links and special members are skipped, and each member is read whole before it is added, so a
damaged archive never leaves half a member in the stream.
"""

from __future__ import annotations

import logging
import lzma
import shutil
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
SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
_BROKEN = (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


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
    archive: IO[bytes], name: str, target: str, out: tarfile.TarFile, admits: Callable[[str], bool]
) -> bool:
    """Add the regular files of the seekable `archive` to `out` below `target`; False if it is unreadable."""
    try:
        for member_name, opened in _members(archive, name):
            path = _inside(member_name)
            full = f"{target}/{path}" if target and path else path
            if not path or not admits(full):
                continue
            with opened() as source, tempfile.TemporaryFile() as spool:
                shutil.copyfileobj(source, spool, 1024 * 1024)
                member = tarfile.TarInfo(full)
                member.size, member.mode = spool.tell(), 0o644
                spool.seek(0)
                out.addfile(member, spool)
    except _BROKEN as error:
        log.warning("archive %s in a context could not be unpacked: %s", name, error)
        return False
    return True


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
