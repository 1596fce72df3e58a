"""Runaway processes in real sessions: a fork bomb leaves the session answering, a timeout or a kill
takes a whole process tree (setsid and double forks included), background processes a command leaves
keep running, and kill_all ends everything but the agent.

Every wait is bounded: commands have short timeouts, and loops that wait for a state give up after
DEADLINE_S.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from cove import AgentBay, AsyncSession, Config, Session
from tests.integration.runtimes import BOTH_RUNTIMES, both_runtimes
from tests.integration.server import KEY_A, CoveServer

BOMB = ":(){ :|:& };:"
DEADLINE_S = 20.0
ORPHAN = (
    'python3 -c "import os; os.fork() and os._exit(0); os.setsid(); '
    "open('/tmp/orphan', 'w').write(str(os.getpid())); os.execvp('sleep', ['sleep', '1000'])\""
    "; until test -s /tmp/orphan; do sleep 0.05; done"
)
"""Leaves `sleep 1000` forked twice, in a session of its own, a child of init, its pid in /tmp/orphan."""


def tool(server: CoveServer, session_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    with server.client(KEY_A) as client:
        response = client.post(
            f"/v1/sessions/{session_id}/tools/{name}", json={"arguments": arguments}, timeout=60
        )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def shell(server: CoveServer, session_id: str, command: str, timeout_ms: int = 10_000) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(
        tool(server, session_id, "shell", command=command, timeout_ms=timeout_ms)["content"][0]["text"]
    )
    return answer


def processes(server: CoveServer, session_id: str) -> int:
    """The session's task count, from its cgroup on the host (what its pids limit counts)."""
    with server.client(KEY_A) as client:
        response = client.get(f"/v1/sessions/{session_id}/metrics")
    assert response.status_code == 200, response.text
    count: int = response.json()["metrics"]["processes"]
    return count


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"still not {what} after {DEADLINE_S} s"
        time.sleep(0.2)


def alive(server: CoveServer, session_id: str, pid_file: str) -> bool:
    """Whether the process whose pid a command wrote to `pid_file` still runs (asked from inside)."""
    answer = shell(server, session_id, f"kill -0 $(cat {pid_file}) 2>/dev/null && echo alive || echo gone")
    return bool(answer["stdout"] == "alive\n")


GVISOR_PIDS = pytest.mark.xfail(
    strict=False,  # how far a bomb gets before the Sentry runs out of host threads varies
    reason="on gvisor the pids cgroup counts the Sentry's host threads and stub processes, not the "
    "session's processes one for one, so a bomb takes the agent down too (docs/runtimes.md)",
)
GVISOR_TREES = pytest.mark.xfail(
    strict=True,
    reason="on gvisor a process tree is its process group (no cgroup per tree), which a child that "
    "called setsid leaves (docs/runtimes.md)",
)


@both_runtimes(gvisor=GVISOR_PIDS)
def test_a_fork_bomb_leaves_the_session_answering_and_kill_all_ends_it(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session(resources={"pids": 64})["session_id"]
    shell(server, session_id, BOMB, timeout_ms=3000)  # returns at once: the bomb runs on in the background
    eventually(lambda: processes(server, session_id) >= 40, "full of the bomb")
    assert shell(server, session_id, "echo alive")["stdout"] == "alive\n", "the reserve serves the agent"
    killed = json.loads(tool(server, session_id, "kill_all_processes")["content"][0]["text"])["killed"]
    assert killed >= 30
    eventually(lambda: processes(server, session_id) <= 10, "back to init and the agent")
    answer = shell(server, session_id, "ps -e -o pid= | wc -l; echo ok")
    assert answer["exit_code"] == 0 and answer["stdout"].endswith("ok\n")
    assert int(answer["stdout"].split()[0]) <= 6, answer["stdout"]


@BOTH_RUNTIMES
def test_kill_all_through_the_sdk(session: Session, server: CoveServer) -> None:
    session.command.execute_command("nohup sleep 1000 >/dev/null 2>&1 &")
    started = session.command.start("sleep 1001")
    result = session.command.kill_all()
    assert result.success and result.request_id and result.killed >= 2, result
    assert session.command.wait(started.process_id, timeout_ms=5000).exit_code == 137
    assert "sleep 100" not in session.command.execute_command("ps -eo args").stdout
    assert session.code.run_code("print(6 * 7)", "python").success, "a kernel starts again on demand"


@both_runtimes(gvisor=GVISOR_TREES)
def test_a_command_that_times_out_takes_its_double_forked_child(server: CoveServer, session: Session) -> None:
    started = "kill -0 $(cat /tmp/orphan) && echo started"
    result = session.command.execute_command(f"{ORPHAN}; {started}; sleep 600", timeout_ms=2000)
    assert result.timed_out and "every process it started" in result.error_message
    assert result.stdout == "started\n"
    assert not alive(server, session.session_id, "/tmp/orphan")


def test_background_processes_outlive_the_command_that_started_them(
    server: CoveServer, session: Session
) -> None:
    result = session.command.execute_command("nohup sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/server")
    assert result.success
    assert alive(server, session.session_id, "/tmp/server")
    session.command.execute_command("true")  # a later command sweeps empty cgroups, never busy ones
    assert alive(server, session.session_id, "/tmp/server")


def test_process_kill_ends_a_tree(server: CoveServer, session: Session) -> None:
    started = session.command.start(f"{ORPHAN}; sleep 600")
    eventually(lambda: alive(server, session.session_id, "/tmp/orphan"), "started the orphan")
    assert session.command.kill(started.process_id).success
    assert not alive(server, session.session_id, "/tmp/orphan")


def test_process_kill_reaches_a_tree_whose_first_process_has_exited(
    server: CoveServer, session: Session
) -> None:
    started = session.command.start("nohup sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/left")
    assert session.command.wait(started.process_id, timeout_ms=5000).exit_code == 0
    assert alive(server, session.session_id, "/tmp/left")
    assert session.command.kill(started.process_id).success
    assert not alive(server, session.session_id, "/tmp/left")


def test_user_processes_keep_the_reserve(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session(resources={"pids": 64})["session_id"]
    limits = shell(server, session_id, "ulimit -Su; ulimit -Hu")["stdout"].split()
    assert limits == ["48", "48"], "64 less a reserve of 16"
    raised = shell(server, session_id, "ulimit -Hu 64")
    assert raised["exit_code"] != 0, "the hard limit cannot be raised"


def test_tree_cgroups_are_removed_with_the_session(server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = agent_bay.create()
        assert created.session is not None, created.error_message
        session = created.session
        session.command.execute_command("nohup sleep 1000 >/dev/null 2>&1 &")
        delegated = [path / "user" for path in server.cgroup_dirs() if path.name == session.session_id]
        assert any(path.is_dir() and any(path.iterdir()) for path in delegated)
        assert session.delete().success
    assert not [path for path in server.cgroup_dirs() if path.name == session.session_id]


async def test_kill_all_through_the_async_sdk(async_session: AsyncSession) -> None:
    await async_session.command.start("sleep 1000")
    result = await async_session.command.kill_all()
    assert result.success and result.killed >= 1, result
    assert (await async_session.command.execute_command("echo ok")).stdout == "ok\n"
