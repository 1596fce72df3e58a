"""Where sessions' cgroups live on this host, v1 or v2, for finding and removing leftovers.

runc creates and removes a session's cgroups itself; this module only finds the ones a crash left.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def hierarchy_roots() -> list[Path]:
    """The mount point of every cgroup hierarchy: one on v2, one per controller group on v1."""
    roots = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0]
            if fstype in ("cgroup", "cgroup2"):
                roots.append(Path(left.split()[4]))
    return roots


def is_cgroup_v2() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def _kill_and_remove(path: Path) -> None:
    for child in [p for p in path.iterdir() if p.is_dir()]:
        _kill_and_remove(child)
    procs = path / "cgroup.procs"
    if procs.exists():
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(OSError):  # still has dying tasks: the next sweep removes it
        path.rmdir()


def remove_leftovers(parent: str, keep: set[str]) -> list[str]:
    """Remove the cgroups under `parent` (e.g. /cove/<instance>) whose name is not in `keep`."""
    removed = set()
    for root in hierarchy_roots():
        directory = root / parent.lstrip("/")
        if not directory.is_dir():
            continue
        for child in directory.iterdir():
            if child.is_dir() and child.name not in keep:
                _kill_and_remove(child)
                removed.add(child.name)
    return sorted(removed)


def remove(parent: str, name: str) -> None:
    """Remove one session's cgroups wherever runc left them."""
    for root in hierarchy_roots():
        path = root / parent.lstrip("/") / name
        if path.is_dir():
            _kill_and_remove(path)
