"""Overlay mounts for session root filesystems, through the mount(2) system call."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """A writable layer (`upper`) over the read-only image (`lower`), at `target`.

    The kernel shows the options as given in every /proc/self/mountinfo, the sandbox's own included,
    so the writable layer and work folder are named by descriptors (/proc/self/fd/N): a session does
    not learn the host's data directory or session layout from them. The lower layer keeps its path:
    `overlays_over` finds an image's users by it.
    """
    descriptors = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in (upper, work)]
    try:
        upper_fd, work_fd = (f"/proc/self/fd/{fd}" for fd in descriptors)
        options = f"lowerdir={lower},upperdir={upper_fd},workdir={work_fd}".encode()
        result = _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options)
        _check(result, f"mount overlay at {target}")
    finally:
        for fd in descriptors:
            os.close(fd)


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
    """Mount points of the overlays in this mount namespace that have `lower` as a lower layer."""
    wanted = {str(lower), str(lower.resolve())}
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount, _, filesystem = line.partition(" - ")
            kind, _, options = [*filesystem.split(), "", "", ""][:3]
            lowers = [o.removeprefix("lowerdir=") for o in options.split(",") if o.startswith("lowerdir=")]
            if kind == "overlay" and wanted & {d for dirs in lowers for d in dirs.split(":")}:
                found.append(Path(mount.split()[4].encode().decode("unicode_escape")))
    return found
