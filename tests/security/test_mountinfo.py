"""What a session learns about the host from its mount table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.server import CoveServer


def test_mount_table_hides_the_session_layout(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session()["session_id"]
    shown = server.sandbox(session_id, "cat /proc/self/mountinfo /proc/self/mounts")
    assert shown.returncode == 0, shown.stderr
    root = next(line for line in shown.stdout.splitlines() if line.split()[4] == "/")
    assert "upperdir=/proc/self/fd/" in root and "workdir=/proc/self/fd/" in root, root
    # The writable layer, the work folder and every other path of the session's folder stay hidden.
    assert str(server.data_dir / "sessions") not in shown.stdout
