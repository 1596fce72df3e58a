"""Session metrics from the kernel's accounting: they move when the sandbox works."""

from __future__ import annotations

import json
import time

from cove import AsyncSession, Session, SessionMetrics
from tests.integration.runtimes import BOTH_RUNTIMES

MiB = 1024 * 1024


def metrics(session: Session) -> SessionMetrics:
    result = session.get_metrics()
    assert result.success and result.metrics is not None, result.error_message
    return result.metrics


@BOTH_RUNTIMES
def test_metrics_move_when_the_sandbox_works(session: Session) -> None:
    idle = metrics(session)
    assert idle.cpu_count == 1.0 and idle.mem_total == 1024 * MiB, "the session's own limits"
    assert 0 < idle.mem_used < idle.mem_total and idle.processes >= 1 and idle.disk_total > 0

    session.command.execute_command("head -c 8000000 /dev/urandom > ~/blob")
    busy = session.command.start("python3 -c 'while True: pass'")
    holder = session.command.start("python3 -c 'import time; x = bytearray(96 * 2**20); time.sleep(600)'")
    session.command.execute_command(
        "python3 -c \"import socket; s = socket.create_server(('127.0.0.1', 30100)); "
        "c = socket.create_connection(('127.0.0.1', 30100)); a, _ = s.accept(); "
        "c.sendall(b'x' * 2000000); c.close(); n = 0\n"
        'while (d := a.recv(65536)): n += len(d)"'
    )
    time.sleep(1)
    working = metrics(session)
    assert working.cpu_seconds > idle.cpu_seconds + 0.3, "the busy loop's CPU time is counted"
    assert working.cpu_used_pct > 0
    assert working.disk_used >= idle.disk_used + 8_000_000
    assert working.mem_used >= idle.mem_used + 80 * MiB
    assert working.processes >= idle.processes + 2
    assert working.rx_used_kbyte >= idle.rx_used_kbyte + 1900, "loopback bytes are counted"
    session.command.kill(busy.process_id)
    session.command.kill(holder.process_id)


@BOTH_RUNTIMES
def test_metrics_as_a_tool(session: Session) -> None:
    listed = [tool.name for tool in session.list_mcp_tools().tools]
    assert "get_metrics" in listed and "shell" in listed
    called = session.call_mcp_tool("get_metrics", {})
    assert called.success and json.loads(called.data)["mem_total"] == 1024 * MiB
    refused = session.call_mcp_tool("get_metrics", {"detail": True})
    assert refused.code == "InvalidArgument" and "no arguments" in refused.error_message


@BOTH_RUNTIMES
def test_metrics_of_a_paused_session(session: Session, runtime: str) -> None:
    assert session.beta_pause().success
    paused = metrics(session)
    assert paused.cpu_used_pct == 0
    if runtime == "gvisor":  # checkpointed: nothing runs, its memory went back to the host
        assert (paused.processes, paused.mem_used) == (0, 0)
    else:  # frozen: its processes keep their memory
        assert paused.processes >= 1 and paused.mem_used > 0
    assert session.beta_resume().success


@BOTH_RUNTIMES
async def test_async_metrics(async_session: AsyncSession) -> None:
    result = await async_session.get_metrics()
    assert result.success and result.metrics is not None and result.metrics.mem_used > 0
    assert result.raw["mem_total"] == result.metrics.mem_total
