"""Where sessions' cgroups live on this host, v1 or v2, for finding and removing leftovers.

runc creates and removes a session's cgroups itself; this module finds the ones a crash left, and
makes the one cgroup runc does not: the folder the sandbox divides into a cgroup per process tree.
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


DELEGATED_NAME = "user"
"""The sandbox's own part of a session's cgroup: `<session cgroup>/user`."""
DELEGATED_FILES = ("cgroup.procs", "tasks")
"""What moves processes into a cgroup (`tasks` on v1 only)."""


def _pids_hierarchy() -> Path | None:
    """The mount point of the v1 hierarchy that has the pids controller, if one does."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split()[:3]
            if fstype == "cgroup" and "pids" in options.split(","):
                return Path(left.split()[4])
    return None


def delegate(session_cgroup: str, owner: int) -> Path | None:
    """Make `<session_cgroup>/user` in one hierarchy and hand it to the host uid `owner`, the session
    user; answers the folder to mount into the sandbox, or None where no hierarchy fits.

    The sandbox's agent makes a child cgroup there for every process tree it starts, so a tree is
    killed by cgroup, setsid and double forks included. Membership is all it is for: on v2 no
    controller is enabled below the session (runc keeps init and the agent in the session's own
    cgroup, which v2 allows only without controllers below), on v1 it is the pids hierarchy, whose
    counts are hierarchical, so a tree still counts against the session's limit. Only the folder and
    the files that move processes are handed over, never a limit. Called before `runc create`, which
    takes an existing cgroup as it is; runc's delete and `remove` below take the children with it.

    On v2 a process may move between cgroups only if its mover can write the cgroup.procs of their
    common ancestor, here the session's own cgroup: that file is handed over too, so the session user
    may also move its processes back to the session's cgroup, out of reach of a tree kill (the
    session's limits still hold, and kill_all_processes does not go by cgroup).
    """
    root = Path("/sys/fs/cgroup") if is_cgroup_v2() else _pids_hierarchy()
    if root is None:
        return None
    session = root / session_cgroup.lstrip("/")
    delegated = session / DELEGATED_NAME
    delegated.mkdir(parents=True, exist_ok=True)
    handed_over = [session / "cgroup.procs"] if is_cgroup_v2() else []
    handed_over += [delegated, *(delegated / name for name in DELEGATED_FILES)]
    for path in handed_over:
        if path.exists():
            os.chown(path, owner, owner)
    return delegated


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
