"""The tool agent and its `shell` tool on real sandboxes, through the REST API and the SDK."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove import AgentBay, AsyncAgentBay, Config, Session
from cove.agent.process_trees import user_process_limit
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, running_server


@BOTH_RUNTIMES
def test_a_command_runs_as_the_session_user(session: Session) -> None:
    result = session.command.execute_command("id -un; pwd; echo oops >&2")
    assert result.success and result.exit_code == 0 and result.request_id
    assert result.stdout == "user\n/home/user\n" and result.stderr == "oops\n"
    assert result.output == "user\n/home/user\noops\n"


@BOTH_RUNTIMES
def test_cwd_and_environment(session: Session) -> None:
    result = session.command.run(
        "pwd; echo $GREETING; env | grep -c ^COVE_ || true", cwd="/tmp", envs={"GREETING": "hi"}
    )
    assert result.stdout.splitlines() == ["/tmp", "hi", "0"], "the agent's own settings do not leak"
    missing = session.command.exec("true", cwd="/nowhere")
    assert not missing.success and "/nowhere" in missing.error_message


@BOTH_RUNTIMES
def test_a_command_starts_in_a_tree_of_its_own(
    new_session: Callable[..., dict[str, Any]], server: CoveServer, runtime: str
) -> None:
    """What is set up before a command runs: a session of its own, its tree's cgroup (on gvisor the
    agent has none: the tree is the session's process group, docs/runtimes.md), the pids limit less
    the agent's reserve, and no descriptor of the agent's."""
    session_id = new_session(resources={"pids": 64})["session_id"]
    script = "echo $$; ps -o sid= -p $$; ulimit -u; cat /proc/self/cgroup; echo fds; ls /proc/self/fd"
    with server.client(KEY_A) as client:
        called = client.post(
            f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": script}}
        )
    assert called.status_code == 200, called.text
    shell, sid, limit, *rest = json.loads(called.json()["result"]["content"][0]["text"])["stdout"].split()
    cgroups, fds = rest[: rest.index("fds")], rest[rest.index("fds") + 1 :]
    assert sid == shell, "the command leads a session of its own"
    assert limit == str(user_process_limit(64)), "the pids limit less the agent's reserve"
    in_tree = any(line.rsplit("/", 1)[-1].startswith("shell-") for line in cgroups)
    assert in_tree == (runtime == "runc"), cgroups
    assert fds == ["0", "1", "2", "3"], "the standard streams, and the listing's own"


@BOTH_RUNTIMES
def test_a_failing_command(session: Session) -> None:
    result = session.command.execute_command("echo partial; echo bad >&2; exit 3")
    assert (result.success, result.exit_code, result.stdout) == (False, 3, "partial\n")
    assert result.error_message == "bad\n"


@BOTH_RUNTIMES
def test_a_command_that_never_ends_is_killed_with_its_process_group(
    session: Session, server: CoveServer
) -> None:
    result = session.command.execute_command("sleep 600 & sleep 601; echo never", timeout_ms=500)
    assert not result.success and result.timed_out and result.exit_code == 124
    assert "timed out after 500 ms" in result.error_message and "never" not in result.stdout
    assert "sleep 60" not in server.sandbox(session.session_id, "ps -eo args").stdout


def test_endless_output_is_cut_and_counted(session: Session) -> None:
    result = session.command.execute_command("head -c 12000000 /dev/zero | tr '\\0' x; echo done >&2")
    assert result.success and len(result.stdout) == 10 * 1024 * 1024
    assert result.stdout_truncated_bytes == 12_000_000 - 10 * 1024 * 1024
    assert result.stderr == "done\n"


def test_background_children_do_not_hold_the_answer(session: Session) -> None:
    started = session.command.execute_command("python3 -c 'import time; time.sleep(60)' & echo started")
    assert started.success and started.stdout == "started\n"
    assert "time.sleep(60)" in session.command.execute_command("ps -eo args").stdout, "it keeps running"


def test_a_command_that_closes_its_streams_early(session: Session) -> None:
    result = session.command.execute_command("echo first; exec >&- 2>&-; sleep 1; exit 5")
    assert (result.exit_code, result.stdout, result.stderr) == (5, "first\n", "")


def test_the_session_user_has_the_usual_umask(session: Session) -> None:
    assert session.command.execute_command("umask").stdout == "0022\n"


def test_a_fork_bomb_does_not_take_the_agent_down(session: Session) -> None:
    bomb = session.command.execute_command("bomb() { bomb | bomb & }; bomb; sleep 60", timeout_ms=3000)
    assert bomb.timed_out, "the bomb's whole process group is killed at the timeout"
    assert session.command.execute_command("echo alive", timeout_ms=30_000).stdout == "alive\n"


def test_tools_are_listed_and_called_by_name(session: Session) -> None:
    tools = session.list_mcp_tools()
    assert tools.success
    shell = next(tool for tool in tools.tools if tool.name == "shell")
    assert shell.input_schema["required"] == ["command"]
    called = session.call_mcp_tool("shell", {"command": "echo raw"})
    assert called.success and json.loads(called.data)["stdout"] == "raw\n"


def test_bad_tool_calls_name_the_problem(session: Session, server: CoveServer) -> None:
    unknown = session.call_mcp_tool("teleport", {})
    assert (unknown.success, unknown.code, unknown.http_status_code) == (False, "InvalidArgument", 400)
    assert "teleport" in unknown.error_message and "shell" in unknown.error_message
    wrong_type = session.call_mcp_tool("shell", {"command": 42})
    assert wrong_type.code == "InvalidArgument" and "'command'" in wrong_type.error_message
    extra = session.call_mcp_tool("shell", {"command": "true", "sudo": True})
    assert "unknown argument 'sudo'" in extra.error_message
    too_long = session.command.execute_command("true", timeout_ms=10**9)
    assert too_long.code == "InvalidArgument" and "maximum" in too_long.error_message


def test_tools_of_a_deleted_session_answer_409(server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        session = agent_bay.create().session
        assert session is not None
        session.delete()
        result = session.command.execute_command("true")
    assert (result.code, result.http_status_code) == ("InvalidState", 409)


def test_a_dead_agent_is_restarted(session: Session, server: CoveServer) -> None:
    killed = session.command.execute_command("kill -9 $PPID; sleep 1")
    assert not killed.success and "tool agent" in killed.error_message
    assert session.command.execute_command("echo back").stdout == "back\n"
    server.sandbox(session.session_id, "pkill -9 -f agent.server")
    assert session.command.execute_command("echo again").stdout == "again\n"


def test_the_host_does_not_follow_a_symlink_planted_by_the_sandbox(
    session: Session, server: CoveServer, data_root: Path
) -> None:
    host_socket = data_root / "host.sock"
    connections: list[Any] = []
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(host_socket))
        listener.listen()
        listener.settimeout(0.5)
        server.sandbox(session.session_id, f"ln -sf {host_socket} /.cove/run/agent.sock.new")
        server.sandbox(session.session_id, "mv -f /.cove/run/agent.sock.new /.cove/run/agent.sock")
        result = session.command.execute_command("echo hi")
        with contextlib.suppress(TimeoutError):
            connections.append(listener.accept())
    assert not result.success and "not a socket" in result.error_message
    assert connections == [], "the host connected to a socket the sandbox pointed it at"


async def test_async_command_and_tools(server: CoveServer) -> None:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = await agent_bay.create()
        assert created.session is not None
        session = created.session
        try:
            result = await session.command.execute_command("echo $((6*7))")
            assert result.success and result.stdout == "42\n"
            assert (await session.command.run("exit 2")).exit_code == 2
            assert "shell" in [tool.name for tool in (await session.list_mcp_tools()).tools]
            assert (await session.call_mcp_tool("shell", {"command": "true"})).success
        finally:
            await session.delete()


def test_rest_surface(api: Any, new_session: Callable[..., dict[str, Any]]) -> None:
    session_id = new_session()["session_id"]
    listed = api.get(f"/v1/sessions/{session_id}/tools")
    assert listed.status_code == 200 and "shell" in [tool["name"] for tool in listed.json()["tools"]]
    called = api.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "exit 1"}})
    assert called.status_code == 200 and called.json()["result"]["isError"] is True
    assert api.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": []}).status_code == 400
    assert api.post("/v1/sessions/session-nope/tools/shell", json={}).status_code == 404


def test_the_agent_starts_on_demand_and_leaves_when_idle(data_root: Path) -> None:
    """An idle session is init alone; the agent starts with the session (to answer its first call
    sooner), goes after idle seconds, and comes back with a call."""
    with (
        running_server(data_root / "data", agent_idle_exit_s=1, warm_pool=0) as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        session = agent_bay.create().session
        assert session is not None

        def agent_running() -> bool:
            return "agent.server" in server.sandbox(session.session_id, "ps -eo args").stdout

        assert wait_until(lambda: not agent_running()), "the agent started with the session left, idle"
        assert session.command.execute_command("echo one").stdout == "one\n"
        assert agent_running()
        assert wait_until(lambda: not agent_running()), "the idle agent left"
        assert session.command.execute_command("echo two").stdout == "two\n", "and comes back"

        sleeper = session.command.start("sleep 600")
        time.sleep(3)
        assert agent_running(), "an agent with a background process stays"
        assert session.command.output(sleeper.process_id).running


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
