"""Sessions on gVisor's runsc (runtime "gvisor") on real sandboxes, beside runc ones on one server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove import AgentBay, Config, CreateSessionParams, Session
from tests.integration.server import KEY_A, CoveServer, scratch_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def runsc_installed() -> None:
    """runsc comes from the install script, as on a real host; a host where that fails fails here."""
    if shutil.which("runsc") is None:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install.sh"), "--runsc-only"], check=True, timeout=600
        )
    assert shutil.which("runsc") is not None, "scripts/install.sh --runsc-only did not install runsc"


@pytest.fixture
def gvisor_session(server: CoveServer) -> Iterator[Session]:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = agent_bay.create(CreateSessionParams(runtime="gvisor"))
        assert created.session is not None, created.error_message
        try:
            yield created.session
        finally:
            created.session.delete()


def test_a_gvisor_session_runs_commands_files_and_code(gvisor_session: Session, server: CoveServer) -> None:
    session = gvisor_session
    with server.client(KEY_A) as http:
        assert http.get(f"/v1/sessions/{session.session_id}").json()["session"]["runtime"] == "gvisor"
    assert session.session_id in server.gvisor_containers()
    # gVisor's own kernel answers, not the host's.
    ran = session.command.execute_command(
        "id -un; uname -r; dmesg 2>/dev/null | head -1; ip -o link 2>&1 | wc -l"
    )
    assert ran.success, ran.error_message
    lines = ran.stdout.splitlines()
    assert lines[0] == "user"
    assert lines[1] == "4.4.0", "gVisor reports its own kernel version"
    assert session.file_system.write_file("/home/user/note.txt", "written in gVisor").success
    assert session.file_system.read_file("/home/user/note.txt").content == "written in gVisor"
    # What the session writes lands in its writable layer on the host, as with runc.
    layer = server.data_dir / "sessions" / session.session_id / "upper" / "home" / "user" / "note.txt"
    assert layer.read_text() == "written in gVisor"
    first = session.code.run_code("x = 41")
    assert first.success, first.error_message
    second = session.code.run_code("x + 1")
    assert second.success and "42" in second.result, second.error_message


def test_runc_and_gvisor_sessions_side_by_side(server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        runc = agent_bay.create(CreateSessionParams(runtime="runc")).session
        default = agent_bay.create().session
        assert runc is not None and default is not None
        try:
            for session in (runc, default):
                kernel = session.command.execute_command("uname -r").stdout.strip()
                assert kernel != "4.4.0", "runc sessions run on the host's kernel"
            with server.client(KEY_A) as http:
                body = http.get(f"/v1/sessions/{default.session_id}").json()["session"]
            assert body["runtime"] == "runc", "the server's default runtime"
        finally:
            runc.delete()
            default.delete()


def test_gvisor_refused_with_advice_when_runsc_is_missing() -> None:
    with scratch_server(runsc="/nonexistent/runsc") as server, server.client(KEY_A) as http:
        refused = http.post("/v1/sessions", json={"runtime": "gvisor"})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "RuntimeUnavailable"
        assert "/nonexistent/runsc" in error["message"] and "install" in error["message"]
        assert "bookworm-backports" in error["message"]
        created = http.post("/v1/sessions", json={"runtime": "runc"})
        assert created.status_code == 201, "runc sessions are unaffected"
        session_id = created.json()["session"]["session_id"]
        ran = http.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "echo ok"}})
        assert ran.status_code == 200 and "ok" in ran.text, ran.text


def test_runtimes_the_server_does_not_allow_are_refused() -> None:
    with (
        scratch_server(allowed_runtimes="gvisor", default_runtime="gvisor") as server,
        server.client(KEY_A) as http,
    ):
        refused = http.post("/v1/sessions", json={"runtime": "runc"})
        assert refused.status_code == 400 and "COVE_ALLOWED_RUNTIMES" in refused.text, refused.text
        unknown = http.post("/v1/sessions", json={"runtime": "docker"})
        assert unknown.status_code == 400 and "runc, gvisor" in unknown.text, unknown.text
        created = http.post("/v1/sessions", json={})
        assert created.status_code == 201, created.text
        assert created.json()["session"]["runtime"] == "gvisor", "the server's default runtime"
