"""A folder of a session packed as a tar by the host, from the session's root filesystem on disk.

Used when the sandbox cannot pack it itself (its init died, or the server restarts after a crash
and finds the container stopped): the session's writable layer still holds every acknowledged
write. The tree is the sandbox's and so untrusted: every name is opened from its parent folder with
O_NOFOLLOW, never through a symlink; symlinks, sockets, FIFOs and devices are left out; and only
what the session user could read (by owner, group and mode) is packed, as the agent would. As the
agent does, sparse files and files over the per-file cap are sent as empty members marked left out
(LEFT_OUT_HEADER), so that the upload reports them; the caller counts the bytes and the deadline.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import IO

from cove.contexts.transfer_limits import LEFT_OUT_HEADER, TransferLimits, sparse_reason
from cove.errors import FileNotFound

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def pack_from_host(
    root: Path, path: str, user: tuple[int, int], target: IO[bytes], limits: TransferLimits
) -> None:
    """Write the folder `path` (absolute in the sandbox) below `root` into `target` as a tar.

    `user` is the session user's (uid, gid) on the host. FileNotFound if the folder is missing, is
    not a folder (a symlink included), or the session user could not reach and list it.
    """
    folder = _open_folder(root, [name for name in path.split("/") if name], user)
    try:
        with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:
            _add_folder(archive, folder, "", user, limits)
    finally:
        os.close(folder)


def _open_folder(root: Path, names: list[str], user: tuple[int, int]) -> int:
    """The folder `names` below `root`, each name opened without following a link, and only if the
    session user could pass through every folder above it and list it, as the agent would."""
    shown = "/" + "/".join(names)
    current = os.open(root, _FOLDER)
    try:
        for name in names:
            if name in (".", "..") or not _permits(os.fstat(current), user, stat.S_IXUSR):
                raise FileNotFound(f"{shown} is not a folder the session's user can reach")
            try:
                following = os.open(name, _FOLDER, dir_fd=current)
            except OSError as error:
                raise FileNotFound(f"{shown} is not a folder of the session ({error.strerror})") from None
            os.close(current)
            current = following
        if not _readable(os.fstat(current), user, folder=True):
            raise FileNotFound(f"{shown} is not a folder the session's user can list")
    except BaseException:
        os.close(current)
        raise
    return current


def _readable(info: os.stat_result, user: tuple[int, int], folder: bool) -> bool:
    """Whether the session user may read the entry (and enter it, for a folder), by its mode bits."""
    return _permits(info, user, stat.S_IRUSR | (stat.S_IXUSR if folder else 0))


def _permits(info: os.stat_result, user: tuple[int, int], owner_bits: int) -> bool:
    """Whether the session user has `owner_bits` (as S_I*USR) on the entry, as owner, group or other."""
    uid, gid = user
    shift = 0 if info.st_uid == uid else 3 if info.st_gid == gid else 6
    need = owner_bits >> shift
    return info.st_mode & need == need


def _add_folder(
    archive: tarfile.TarFile, folder: int, prefix: str, user: tuple[int, int], limits: TransferLimits
) -> None:
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        name = prefix + entry.name
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) and _readable(info, user, folder=True):
                child = os.open(entry.name, _FOLDER, dir_fd=folder)
                try:
                    _add_folder(archive, child, name + "/", user, limits)
                finally:
                    os.close(child)
            elif stat.S_ISREG(info.st_mode) and _readable(info, user, folder=False):
                _add_file(archive, folder, entry.name, name, limits)
        except OSError:
            continue  # gone meanwhile, or replaced by something that is not a file or folder


def _add_file(archive: tarfile.TarFile, folder: int, entry: str, name: str, limits: TransferLimits) -> None:
    descriptor = os.open(entry, _FILE, dir_fd=folder)
    with os.fdopen(descriptor, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            return
        member = tarfile.TarInfo(name)
        member.size, member.mode, member.mtime = info.st_size, info.st_mode & 0o777, int(info.st_mtime)
        reason = sparse_reason(info) or limits.file_too_large(info.st_size)
        if reason:
            member.size, member.pax_headers = 0, {LEFT_OUT_HEADER: reason}
            archive.addfile(member)
            return
        archive.addfile(member, source)
