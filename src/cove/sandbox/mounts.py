"""Overlay mounts for session root filesystems, through the mount(2) system call."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def image_tag(lower: os.stat_result) -> str:
    """The overlay source that names the image under it, by its root folder's device and inode:
    `overlays_over` finds an image's users by it, so the lower layer need not show its path."""
    return f"cove-image.{lower.st_dev}.{lower.st_ino}"


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """A writable layer (`upper`) over the read-only image (`lower`), at `target`.

    The kernel shows the options as given in every /proc/self/mountinfo, the sandbox's own included,
    so all three layers are named by descriptors (/proc/self/fd/N): a session does not learn the
    host's data directory, images folder or session layout from them.
    """
    descriptors = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in (lower, upper, work)]
    try:
        lower_fd, upper_fd, work_fd = (f"/proc/self/fd/{fd}" for fd in descriptors)
        options = f"lowerdir={lower_fd},upperdir={upper_fd},workdir={work_fd}".encode()
        source = image_tag(os.fstat(descriptors[0])).encode()
        result = _libc.mount(source, str(target).encode(), b"overlay", 0, options)
        _check(result, f"mount overlay at {target}")
    finally:
        for fd in descriptors:
            os.close(fd)


def mount_tmpfs(target: Path, size_bytes: int) -> None:
    """A fresh, size-capped tmpfs at `target` (no devices, no set-user-ID programs)."""
    options = f"size={size_bytes},mode=755".encode()
    result = _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options)
    _check(result, f"mount tmpfs at {target}")


def remount_read_only(target: Path) -> None:
    """Make the filesystem mounted at `target` read-only for everyone, until it is unmounted."""
    flags = MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    result = _libc.mount(None, str(target).encode(), None, flags, None)
    _check(result, f"remount {target} read-only")


def unmount(target: Path) -> None:
    """Detach `target`; a lazy detach never blocks on a process still using it."""
    result = _libc.umount2(str(target).encode(), MNT_DETACH)
    _check(result, f"unmount {target}")


def mount_points_under(prefix: Path) -> list[Path]:
    """Mount points at or below `prefix` in this mount namespace, deepest first."""
    found = []
    base = str(prefix).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with spaces and the like escaped as octal.
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(base):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def overlays_over(lower: Path) -> list[Path]:
    """Mount points of the overlays in this mount namespace over the image `lower` (by `image_tag`)."""
    try:
        wanted = image_tag(lower.stat())
    except FileNotFoundError:
        return []
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount, _, filesystem = line.partition(" - ")
            kind, source = [*filesystem.split(), "", ""][:2]
            if kind == "overlay" and source == wanted:
                found.append(Path(mount.split()[4].encode().decode("unicode_escape")))
    return found
