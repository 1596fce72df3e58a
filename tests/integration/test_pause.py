"""Pause and resume on real sandboxes: frozen processes, nothing lost, across a server restart."""

from __future__ import annotations

import time
from pathlib import Path

from cove import AgentBay, AsyncSession, Config, Session
from tests.integration.server import KEY_A, CoveServer, running_server

COUNTER = "n=0; while :; do n=$((n+1)); echo $n > ~/count.tmp; mv ~/count.tmp ~/count; done"


def count(server: CoveServer, session: Session) -> int:
    """The busy loop's progress, read from the session's writable layer on the host (no exec needed)."""
    path = server.data_dir / "sessions" / session.session_id / "upper" / "home" / "user" / "count"
    for _ in range(100):
        try:
            return int(path.read_text())
        except (FileNotFoundError, ValueError):  # not written yet
            time.sleep(0.05)
    raise AssertionError("the counter never started")


def test_a_paused_session_gets_no_cpu_and_keeps_everything(session: Session, server: CoveServer) -> None:
    session.file_system.write_file("/home/user/kept.txt", "still here")
    busy = session.command.start(COUNTER)
    assert busy.success and count(server, session) >= 0

    paused = session.beta_pause()
    assert paused.success and paused.status == "PAUSED"
    assert session.get_status().status == "PAUSED"
    frozen = count(server, session)
    time.sleep(1)
    assert count(server, session) == frozen, "a paused process makes no progress"
    refused = session.command.execute_command("true")
    assert (refused.code, refused.http_status_code) == ("InvalidState", 409)
    assert "resume it first" in refused.error_message
    assert session.beta_pause().success, "pausing a paused session is fine"

    resumed = session.beta_resume()
    assert resumed.success and resumed.status == "RUNNING"
    deadline = time.monotonic() + 30
    while count(server, session) == frozen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(server, session) > frozen, "the same process goes on after resume"
    assert session.command.output(busy.process_id).running
    assert session.file_system.read_file("/home/user/kept.txt").content == "still here"
    session.command.kill(busy.process_id)


def test_pause_survives_a_server_restart(data_root: Path) -> None:
    with running_server(data_root / "data") as server:
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            session = agent_bay.create().session
            assert session is not None
            session.command.start("sleep 600")
            assert agent_bay.beta_pause(session).success
        server.stop()
        server.start()
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            again = agent_bay.get(session.session_id).session
            assert again is not None and again.get_status().status == "PAUSED"
            assert agent_bay.beta_resume(again).success
            assert "sleep 600" in again.command.execute_command("ps -eo args").stdout, "processes survived"


def test_pause_and_resume_only_from_the_right_states(server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        session = agent_bay.create().session
        assert session is not None
        assert session.beta_resume().success, "resuming a running session is fine"
        assert session.beta_pause().success
        deleted = session.delete()
        assert deleted.success, "a paused session can be deleted"
        assert session.session_id not in server.containers()
        late = session.beta_pause()
        assert (late.success, late.code, late.http_status_code) == (False, "InvalidState", 409)
        assert "DELETED" in late.error_message
        with server.client(KEY_A) as http:
            assert http.post("/v1/sessions/session-nope/pause").status_code == 404


async def test_async_pause_and_resume(async_session: AsyncSession) -> None:
    assert (await async_session.beta_pause_async()).status == "PAUSED"
    assert (await async_session.get_status()).status == "PAUSED"
    assert (await async_session.beta_resume_async()).status == "RUNNING"
    assert (await async_session.beta_pause()).success and (await async_session.beta_resume()).success
    assert (await async_session.command.execute_command("echo up")).stdout == "up\n"
