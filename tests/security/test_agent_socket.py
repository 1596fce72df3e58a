"""Code in a session removes or replaces its agent's socket: init puts it back, and the session answers."""

from __future__ import annotations

import time

import pytest

from cove import Session
from tests.integration.runtimes import BOTH_RUNTIMES


@pytest.mark.parametrize(
    "attack",
    [
        "rm -f /.cove/run/agent.sock",
        "rm -f /.cove/run/agent.sock && mkfifo /.cove/run/agent.sock",
        "rm -f /.cove/run/agent.sock && mkdir /.cove/run/agent.sock",
        "mv /.cove/run/agent.sock /.cove/run/elsewhere",
    ],
)
@BOTH_RUNTIMES
def test_the_agent_socket_comes_back(session: Session, attack: str) -> None:
    assert session.command.execute_command("echo before").output.strip() == "before"
    session.command.execute_command(attack)
    deadline = time.monotonic() + 20  # init checks its socket every 2 s
    while True:
        result = session.command.execute_command("echo after")
        if result.success:
            break
        assert time.monotonic() < deadline, result.error_message
        time.sleep(0.5)
    assert result.output.strip() == "after"
    assert (
        session.command.execute_command("test -S /.cove/run/agent.sock && echo socket").output.strip()
        == "socket"
    )
