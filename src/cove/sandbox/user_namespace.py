"""Per-session caps on the kernel counters that each user namespace keeps, set from the host.

The kernel counts inotify instances and watches, and namespaces made, at every level of the user
namespace tree, and a sandbox's level above its own belongs to the one who made its namespace: root,
through runc. Without a cap of its own, one session could use up root's share, which every other
session and the host's own root processes draw on. So each sandbox's namespace gets its own caps
(entered with nsenter as its owner, before any untrusted code runs), and the server raises the
host's caps for root so that every sandbox's full share fits in it.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

from cove.errors import SandboxError

log = logging.getLogger(__name__)

SESSION_CAPS = {
    "max_inotify_instances": 128,
    "max_inotify_watches": 65536,
    "max_fanotify_groups": 0,
    "max_fanotify_marks": 0,
    # Making namespaces is refused by seccomp already; these hold should it ever not be.
    "max_user_namespaces": 0,
    "max_mnt_namespaces": 0,
    "max_net_namespaces": 0,
    "max_pid_namespaces": 0,
    "max_ipc_namespaces": 0,
    "max_uts_namespaces": 0,
    "max_cgroup_namespaces": 0,
    "max_time_namespaces": 0,
}
"""Written to /proc/sys/user/ inside each sandbox's user namespace."""
HOST_CAPS = {
    "/proc/sys/fs/inotify/max_user_instances": "max_inotify_instances",
    "/proc/sys/fs/inotify/max_user_watches": "max_inotify_watches",
}
"""Root's caps in the host namespace, and the session cap whose sum over all sandboxes they must hold."""
HOST_HEADROOM = 1024
"""Left for root's own processes on top of every sandbox's share."""


Runner = Callable[[list[str], float], subprocess.CompletedProcess[str]]


def cap_session(pid: int, run: Runner) -> None:
    """Write SESSION_CAPS in the user namespace of process `pid` (a sandbox's init).

    `run` runs a command with a time limit (process_runner.run_bounded), so a wedged nsenter
    cannot hang a create.
    """
    script = "".join(
        f"[ ! -e /proc/sys/user/{name} ] || echo {value} > /proc/sys/user/{name} || exit 1\n"
        for name, value in SESSION_CAPS.items()
    )
    result = run(["nsenter", "--user", f"--target={pid}", "sh", "-ec", script], 10)
    if result.returncode != 0:
        raise SandboxError(
            f"could not cap the user namespace of sandbox process {pid}: {result.stderr.strip()}"
        )


def raise_host_caps(sandboxes: int) -> None:
    """Make room in root's host caps for `sandboxes` sandboxes at their full caps; never lowers one."""
    for path, name in HOST_CAPS.items():
        needed = SESSION_CAPS[name] * sandboxes + HOST_HEADROOM
        file = Path(path)
        with contextlib.suppress(FileNotFoundError):
            if int(file.read_text()) < needed:
                file.write_text(f"{needed}\n")
                log.info("raised %s to %d for %d sandboxes", path, needed, sandboxes)
