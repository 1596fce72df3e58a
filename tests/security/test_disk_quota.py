"""Disk and inodes: a session writes at most its disk limit, whatever it writes and wherever."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cove.sandbox.session_volumes import filesystem_type
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer

MiB = 1024 * 1024
FULL = ("Disk quota exceeded", "No space left on device")


def fill(server: CoveServer, session_id: str, path: str, mib: int) -> subprocess.CompletedProcess[str]:
    return server.sandbox(session_id, f"dd if=/dev/zero of={path} bs=1M count={mib} 2>&1; echo rc=$?")


@BOTH_RUNTIMES
def test_writing_past_the_limit_fails_and_the_session_goes_on(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session = new_session(resources={"disk_mb": 64})
    assert session["resources"]["disk_mb"] == 64
    session_id = session["session_id"]

    written = fill(server, session_id, "$HOME/big", 100)
    assert any(message in written.stdout for message in FULL), written.stdout
    assert "rc=0" not in written.stdout
    size = int(server.sandbox(session_id, "stat -c %s ~/big").stdout)
    assert size <= 64 * MiB

    again = server.sandbox(session_id, "rm ~/big && echo kept > ~/small && cat ~/small")
    assert again.stdout == "kept\n", again.stderr
    assert "rc=0" in fill(server, session_id, "$HOME/second", 32).stdout, "deleting gave the space back"


def test_the_agent_run_folder_counts_too(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session(resources={"disk_mb": 32})["session_id"]
    written = fill(server, session_id, "/.cove/run/big", 64)
    assert any(message in written.stdout for message in FULL), written.stdout
    server.sandbox(session_id, "rm -f /.cove/run/big")


def test_a_flood_of_empty_files_stops_at_the_limit(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session(resources={"disk_mb": 16})["session_id"]
    flood = (
        "import os\nos.mkdir('flood')\nn = 0\ntry:\n    while True:\n"
        "        os.close(os.open(f'flood/{n}', os.O_CREAT | os.O_WRONLY)); n += 1\n"
        "except OSError as e:\n    print(n, e.strerror)\n"
    )
    result = server.sandbox(session_id, f'cd ~ && python3 -c "{flood}"', timeout=60)
    count, _, reason = result.stdout.strip().partition(" ")
    assert reason in FULL, result.stdout + result.stderr
    assert 1000 < int(count) < 16 * 3000, "metadata is counted: about 2,900 empty files per MiB"
    cleaned = server.sandbox(session_id, "rm -rf ~/flood && touch ~/after && echo ok", timeout=60)
    assert cleaned.stdout == "ok\n", cleaned.stderr


def test_a_full_session_leaves_others_and_the_host_alone(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    full = new_session(resources={"disk_mb": 32})["session_id"]
    fill(server, full, "$HOME/big", 64)
    other = new_session()["session_id"]
    assert "rc=0" in fill(server, other, "$HOME/data", 100).stdout
    host_file = server.data_dir.parent / "host-write-check"
    host_file.write_bytes(b"x" * MiB)
    assert host_file.stat().st_size == MiB
    host_file.unlink()


def test_a_subvolume_of_its_own_is_refused(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    """Any user may make a btrfs subvolume in a folder it can write, and it would have no limit."""
    session_id = new_session(resources={"disk_mb": 32})["session_id"]
    attempts = SUBVOLUME_ATTEMPTS.replace("SUBVOL_CREATE", str(0x5000940E))
    result = server.sandbox(session_id, f"cd ~ && python3 -c '{attempts}'")
    assert result.stdout.split("\n")[:3] == ["Operation not permitted"] * 3, result.stdout + result.stderr
    assert f"{session_id}/" not in _subvolumes(server.data_dir / "sessions"), "no subvolume inside it"


SUBVOLUME_ATTEMPTS = """
import ctypes, os
args = bytearray(4096)
args[8:11] = b"esc"
libc = ctypes.CDLL(None, use_errno=True)
ioctl = {"x86_64": 16, "aarch64": 29}[os.uname().machine]
# the last request has bits above the 32 the kernel reads
attempts = (("/.cove/run", SUBVOL_CREATE), (".", SUBVOL_CREATE), ("/.cove/run", SUBVOL_CREATE | 1 << 32))
for folder, request in attempts:
    fd = os.open(folder, os.O_RDONLY)
    buffer = (ctypes.c_char * 4096).from_buffer(args)
    made = libc.syscall(ioctl, fd, ctypes.c_ulong(request), buffer) == 0
    print("made" if made else os.strerror(ctypes.get_errno()))
"""


def test_metrics_report_the_limit(api: httpx.Client, new_session: Callable[..., dict[str, Any]]) -> None:
    session_id = new_session(resources={"disk_mb": 128})["session_id"]
    answer = api.post(f"/v1/sessions/{session_id}/tools/get_metrics", json={"arguments": {}})
    assert answer.status_code == 200, answer.text
    metrics = json.loads(answer.json()["result"]["content"][0]["text"])
    assert metrics["disk_total"] == 128 * MiB
    assert 0 <= metrics["disk_used"] < 128 * MiB


@pytest.mark.parametrize(
    ("disk_mb", "expected"),
    [
        (0, "minimum is 16"),
        (-5, "minimum is 16"),
        (10**7, "maximum is 102400"),
        ("lots", "integer"),
        (1.5, ""),
    ],
)
def test_a_bad_disk_limit_is_refused(api: httpx.Client, disk_mb: Any, expected: str) -> None:
    answer = api.post("/v1/sessions", json={"resources": {"disk_mb": disk_mb}})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidArgument"
    assert "resources.disk_mb" in error["message"] and expected in error["message"]


def _subvolumes(sessions: Path) -> str:
    return subprocess.run(
        ["btrfs", "subvolume", "list", str(sessions)], capture_output=True, text=True
    ).stdout


def test_deleting_a_session_leaves_no_subvolume_or_qgroup(server: CoveServer, api: httpx.Client) -> None:
    sessions = server.data_dir / "sessions"
    assert filesystem_type(sessions) == "btrfs"
    session_id = api.post("/v1/sessions", json={"resources": {"disk_mb": 64}}).json()["session"]["session_id"]
    listed = [
        line.split() for line in _subvolumes(sessions).splitlines() if line.endswith(f"path {session_id}")
    ]
    assert len(listed) == 1, _subvolumes(sessions)
    qgroup = f"0/{listed[0][1]}"
    shown = subprocess.run(["btrfs", "qgroup", "show", "-r", str(sessions)], capture_output=True, text=True)
    assert any(line.split()[:1] == [qgroup] and "64.00MiB" in line for line in shown.stdout.splitlines())

    assert api.delete(f"/v1/sessions/{session_id}").status_code == 200
    assert session_id not in _subvolumes(sessions) and not (sessions / session_id).exists()
    # The kernel frees a deleted subvolume's space in the background; once it has, no qgroup is left.
    subprocess.run(["btrfs", "filesystem", "sync", str(sessions)], check=True)
    subprocess.run(["btrfs", "subvolume", "sync", str(sessions)], check=True, timeout=60)
    shown = subprocess.run(["btrfs", "qgroup", "show", str(sessions)], capture_output=True, text=True)
    assert qgroup not in shown.stdout.split(), shown.stdout
