"""Process trees on the host, without a sandbox: the reserve, the reading of the limits file the
sandbox could tamper with, the process-group fallback, and the SDK's reading of kill_all's answer.

kill_all itself is only ever run inside a sandbox (tests/security/test_fork_bomb.py): on the host it
would signal every process root may signal.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.agent import host_files, process_trees
from cove.sdk import process_calls

NOBODY = 65534
"""An owner other than the test's own, as the host's root appears inside a sandbox."""


@pytest.mark.parametrize(("pids", "limit"), [(8, 6), (64, 48), (512, 480), (4096, 4064)])
def test_the_reserve_is_a_quarter_of_the_limit_at_most_32(pids: int, limit: int) -> None:
    assert process_trees.user_process_limit(pids) == limit


@given(st.integers(min_value=1, max_value=process_trees.PID_MAX_LIMIT))
def test_user_processes_and_the_reserve_share_the_limit(pids: int) -> None:
    limit = process_trees.user_process_limit(pids)
    assert 1 <= limit <= pids and pids - limit <= process_trees.MAX_RESERVE


def limits_file(tmp_path: Path, text: str, owner: int = NOBODY) -> str:
    path = tmp_path / "limits.json"
    path.write_text(text)
    os.chown(path, owner, owner)
    return str(path)


def test_the_hosts_limits_file_is_read(tmp_path: Path) -> None:
    assert process_trees.read_pids_limit(limits_file(tmp_path, '{"pids": 64}')) == 64


@pytest.mark.parametrize(
    "text",
    ["", "64", '{"pids": "64"}', '{"pids": true}', '{"pids": 0}', '{"pids": 4194305}', "[64]", '{"pid": 64}'],
)
def test_a_limits_file_that_makes_no_sense_is_ignored(tmp_path: Path, text: str) -> None:
    assert process_trees.read_pids_limit(limits_file(tmp_path, text)) is None


def test_an_endless_limits_file_is_read_no_further_than_its_start(tmp_path: Path) -> None:
    path = limits_file(tmp_path, '{"pids": 64' + " " * host_files.MAX_BYTES + "}")
    assert process_trees.read_pids_limit(path) is None


def test_a_limits_file_the_session_user_could_have_written_is_ignored(tmp_path: Path) -> None:
    assert process_trees.read_pids_limit(limits_file(tmp_path, '{"pids": 64}', owner=os.getuid())) is None


def test_links_and_fifos_are_not_followed_or_waited_on(tmp_path: Path) -> None:
    target = limits_file(tmp_path, '{"pids": 64}')
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    os.chown(tmp_path / "fifo", NOBODY, NOBODY)
    assert process_trees.read_pids_limit(str(tmp_path / "link")) is None
    assert process_trees.read_pids_limit(str(tmp_path / "fifo")) is None
    assert process_trees.read_pids_limit(str(tmp_path / "missing")) is None


def test_a_tree_takes_the_reserve_and_without_cgroups_is_its_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_trees, "LIMITS_PATH", limits_file(tmp_path, '{"pids": 64}'))
    process, tree = process_trees.popen(
        "test", ["bash", "-c", "ulimit -Su; ulimit -Hu; sleep 600 & wait"], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert [process.stdout.readline(), process.stdout.readline()] == [b"48\n", b"48\n"]
    assert tree.cgroup is None and tree.leader == process.pid == os.getpgid(process.pid)
    tree.kill()
    assert process.wait(10) == -9
    process.stdout.close()


def test_kill_all_answers_how_many_were_killed() -> None:
    call = process_calls.kill_all("session-1")
    text = json.dumps({"killed": 47})
    answer = {"request_id": "r-1", "result": {"content": [{"type": "text", "text": text}], "isError": False}}
    result = call.finish(200, {}, json.dumps(answer).encode())
    assert (result.success, result.request_id, result.killed) == (True, "r-1", 47)
    assert call.path.endswith("/tools/kill_all_processes")
    failed = {
        "request_id": "r-2",
        "result": {"content": [{"type": "text", "text": "2 still ran"}], "isError": True},
    }
    result = call.finish(200, {}, json.dumps(failed).encode())
    assert (result.success, result.error_message) == (False, "2 still ran")
