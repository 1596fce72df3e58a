"""What a session learns about the host from its mount table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.sandbox.runtime import AGENT_DIR
from tests.integration.server import CoveServer

REPOSITORY = Path(__file__).resolve().parents[2]


def test_mount_table_hides_the_session_layout(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session()["session_id"]
    shown = server.sandbox(session_id, "cat /proc/self/mountinfo /proc/self/mounts")
    assert shown.returncode == 0, shown.stderr
    root = next(line for line in shown.stdout.splitlines() if line.split()[4] == "/")
    assert "lowerdir=/proc/self/fd/" in root and "upperdir=/proc/self/fd/" in root, root
    assert "workdir=/proc/self/fd/" in root, root
    agent = next(line for line in shown.stdout.splitlines() if line.split()[4] == "/.cove/agent")
    assert agent.split()[3] == "/", agent  # bound from the root of the agent's own filesystem
    images = Path(server.settings.get("images_dir", server.data_dir / "images"))
    # No layer, no session folder, no image and no install path of Cove's is named.
    for host_path in (server.data_dir, images, AGENT_DIR, REPOSITORY):
        assert str(host_path) not in shown.stdout, host_path
        assert str(host_path.resolve()) not in shown.stdout, host_path
