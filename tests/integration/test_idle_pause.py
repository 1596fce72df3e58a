"""Sessions paused, not deleted, once idle past their idle timeout (idle action "pause"), on real
runc and runsc sandboxes; with COVE_AUTO_RESUME their next call resumes them (docs/runtimes.md)."""

from __future__ import annotations

import time

import httpx
import pytest

from cove import AgentBay, Config, CreateSessionParams, Session
from tests.integration.runtimes import ensure_runsc
from tests.integration.server import KEY_A, scratch_server

WEB_PORT = 30100


@pytest.fixture(scope="module", autouse=True)
def runsc_installed() -> None:
    ensure_runsc()


def wait_for_status(session: Session, wanted: str, timeout_s: float = 120) -> None:
    """Polls the session's status (reading it is no activity) until it is `wanted`."""
    deadline = time.monotonic() + timeout_s
    status = session.get_status().status
    while status != wanted:
        assert status in ("RUNNING", "PAUSING", "PAUSED"), f"the session became {status}"
        assert time.monotonic() < deadline, f"the session stayed {status}"
        time.sleep(0.2)
        status = session.get_status().status
    time.sleep(1)  # a few sweeps more: it stays so
    assert session.get_status().status == wanted


def test_an_idle_gvisor_session_is_checkpointed_and_a_call_resumes_it() -> None:
    """The server's COVE_IDLE_ACTION: the session is paused, its memory written out and the sandbox
    stopped; the code kernel's variable is there again after the call that resumes it."""
    with (
        scratch_server(idle_action="pause", auto_resume="true", reconcile_interval_s="0.2") as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        created = agent_bay.create(CreateSessionParams(runtime="gvisor", idle_release_timeout=2))
        assert created.session is not None, created.error_message
        session = created.session
        try:
            assert session.code.run_code("kept = 7").success
            wait_for_status(session, "PAUSED")
            images = server.data_dir / "paused" / session.session_id
            assert (images / "checkpoint").is_dir(), "its memory is in its checkpoint"
            assert server.gvisor_sandbox_goes(session.session_id), "the sandbox is stopped"
            with server.client(KEY_A) as http:
                body = http.get(f"/v1/sessions/{session.session_id}").json()["session"]
            assert body["idle_action"] == "pause" and body["status_reason"] == ""
            ran = session.code.run_code("kept * 6")
            assert ran.success and "42" in ran.result, ran.error_message
            assert session.get_status().status == "RUNNING"
        finally:
            session.delete()


def test_an_idle_runc_session_is_frozen_and_a_link_request_resumes_it() -> None:
    """A create's own idle action, on a server that deletes idle sessions: the session is frozen,
    and a request through one of its links thaws it, the web server in it answering as before."""
    with (
        scratch_server(auto_resume="true", reconcile_interval_s="0.2") as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        params = CreateSessionParams(runtime="runc", idle_release_timeout=2, idle_action="pause")
        created = agent_bay.create(params)
        assert created.session is not None, created.error_message
        session = created.session
        try:
            assert session.file_system.write_file("/tmp/site/hello.txt", "kept in the session\n").success
            started = session.command.start(f"python3 -m http.server {WEB_PORT}", cwd="/tmp/site")
            assert started.success, started.error_message
            link = session.get_link("http", WEB_PORT)
            assert link.success, link.error_message
            deadline = time.monotonic() + 30
            while httpx.get(link.data + "hello.txt", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the web server never answered"
                time.sleep(0.1)
            wait_for_status(session, "PAUSED")
            assert server.runc("state", session.session_id).stdout.count('"paused"') == 1
            answer = httpx.get(link.data + "hello.txt", timeout=60)
            assert answer.status_code == 200 and answer.text == "kept in the session\n", answer.text
            assert session.get_status().status == "RUNNING"
            assert session.command.output(started.process_id).running, "the same web server"
            wait_for_status(session, "PAUSED")  # idle again after the resume, it pauses again
        finally:
            session.delete()
        refused = agent_bay.create(CreateSessionParams(idle_action="later"))
        assert not refused.success and "idle_action must be one of delete, pause" in refused.error_message
