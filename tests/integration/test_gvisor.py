"""Sessions on gVisor's runsc (runtime "gvisor") on real sandboxes, beside runc ones on one server."""

from __future__ import annotations

import signal
import sqlite3
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from cove import AgentBay, Config, CreateSessionParams, Session
from cove.cli import main
from tests.integration.runtimes import ensure_runsc
from tests.integration.server import KEY_A, CoveServer, running_server, scratch_server


@pytest.fixture(scope="module", autouse=True)
def runsc_installed() -> None:
    ensure_runsc()


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


def cove(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_cli_creates_a_gvisor_session(server: CoveServer) -> None:
    created = cove("key", "create", "--name", "gvisor-cli", "--data-dir", str(server.data_dir))
    assert created.exit_code == 0, created.output
    client = ["--endpoint", server.url, "--api-key", created.output.strip()]
    made = cove("session", "create", *client, "--runtime", "gvisor")
    assert made.exit_code == 0, made.output
    session_id = made.output.strip()
    try:
        assert session_id in server.gvisor_containers()
        assert server.sandbox(session_id, "uname -r").stdout.strip() == "4.4.0"
    finally:
        assert cove("session", "rm", *client, session_id).exit_code == 0


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


HOLDER = r"""
import hashlib, os, time
data = bytearray(os.urandom(1 << 20)) * 256  # 256 MiB, every page written
digest = hashlib.sha256(data).hexdigest()
open("/tmp/digest.tmp", "w").write(digest)
os.rename("/tmp/digest.tmp", "/tmp/digest")
count = 0
while True:
    count += 1
    open("/tmp/count.tmp", "w").write(str(count))
    os.rename("/tmp/count.tmp", "/tmp/count")
    if os.path.exists("/tmp/verify"):
        os.remove("/tmp/verify")
        open("/tmp/verified.tmp", "w").write(hashlib.sha256(data).hexdigest())
        os.rename("/tmp/verified.tmp", "/tmp/verified")
    time.sleep(0.1)
"""


def wait_for_file(session: Session, path: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        read = session.command.execute_command(f"cat {path} 2>/dev/null")
        if read.success and read.stdout.strip():
            return read.stdout.strip()
        time.sleep(0.5)
    raise AssertionError(f"{path} never appeared")


def removed(path: Path, timeout_s: float = 60) -> bool:
    """Whether `path` goes: the image a sandbox was restored from is removed after the answer."""
    deadline = time.monotonic() + timeout_s
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


GAIN_WAIT_S = 15.0
"""How long a pause's gain of host memory is watched for."""


def median_mem_available_mib() -> float:
    samples = []
    for _ in range(5):
        samples.append(mem_available_mib())
        time.sleep(0.2)
    return statistics.median(samples)


def test_pause_checkpoints_and_frees_memory_and_resume_restores_it(server: CoveServer) -> None:
    """The session's disk limit is below the memory it holds: its image is not its files."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = agent_bay.create(CreateSessionParams(runtime="gvisor", disk_mb=128))
        assert created.session is not None, created.error_message
        try:
            paused_and_resumed(created.session, server)
        finally:
            created.session.delete()


def paused_and_resumed(session: Session, server: CoveServer) -> None:
    assert session.file_system.write_file("/home/user/holder.py", HOLDER).success
    holder = session.command.start("python3 /home/user/holder.py")
    assert holder.success, holder.error_message
    digest = wait_for_file(session, "/tmp/digest")
    counted = int(wait_for_file(session, "/tmp/count"))
    directory = server.data_dir / "paused" / session.session_id

    # The host is shared: other work may take memory while this pause gives it back. A pause whose
    # gain drowned in that is resumed and tried again, up to three times in all. On a virtual
    # machine that reports free pages to its hypervisor, memory just freed can be missing from
    # MemAvailable for some seconds while it is reported: the gain is watched for a while.
    gains = []
    for _ in range(3):
        before = median_mem_available_mib()
        paused = session.beta_pause()
        assert paused.success and paused.status == "PAUSED", paused.error_message
        assert server.gvisor_sandbox_goes(session.session_id), "the sandbox is stopped"
        image = directory / "checkpoint"
        assert image.is_dir() and not (directory / "checkpoint.partial").exists()
        assert sum(f.stat().st_size for f in image.iterdir()) > 256 * 1024 * 1024
        deadline = time.monotonic() + GAIN_WAIT_S
        while True:
            gain = median_mem_available_mib() - before
            if gain >= 200 or time.monotonic() > deadline:
                break
        gains.append(gain)
        if gain >= 200:
            break
        assert session.beta_resume().success
    assert gains[-1] >= 200, f"MemAvailable rose by only {', '.join(f'{g:.0f}' for g in gains)} MiB"
    refused = session.command.execute_command("true")
    assert (refused.code, refused.http_status_code) == ("InvalidState", 409)
    with server.client(KEY_A) as http:
        metrics = http.get(f"/v1/sessions/{session.session_id}/metrics")
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["metrics"]["mem_used"] == 0, "nothing runs while it is checkpointed"

    resumed = session.beta_resume()
    assert resumed.success and resumed.status == "RUNNING", resumed.error_message
    assert not image.exists() and removed(directory / "checkpoint.restoring")
    again = int(wait_for_file(session, "/tmp/count"))
    assert again >= counted, "the counter goes on from where it was"
    assert session.command.output(holder.process_id).running, "the agent still knows its process"
    interfaces = session.command.execute_command("cat /proc/net/dev").stdout
    assert "eth0:" in interfaces, "the restored network stack has its interface again"
    assert session.file_system.write_file("/tmp/verify", "1").success
    assert wait_for_file(session, "/tmp/verified") == digest, "its 256 MiB came back intact"
    # The same kernel state: the counter is in memory, and keeps going.
    time.sleep(1)
    assert int(wait_for_file(session, "/tmp/count")) > again
    session.command.kill(holder.process_id)


def test_a_paused_gvisor_session_is_deleted_with_its_checkpoint(server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        session = agent_bay.create(CreateSessionParams(runtime="gvisor")).session
        assert session is not None
        assert session.beta_pause().success
        images = server.data_dir / "paused" / session.session_id
        assert (images / "checkpoint").is_dir()
        assert session.delete().success
        assert not images.exists(), "the checkpoint went with the session"
        assert not (server.data_dir / "sessions" / session.session_id).exists()


def test_a_paused_gvisor_session_survives_a_server_restart(data_root: Path) -> None:
    with running_server(data_root / "data") as server:
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            session = agent_bay.create(CreateSessionParams(runtime="gvisor")).session
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
            again.delete()


def test_a_pause_cut_off_midway_leaves_the_session_running(data_root: Path) -> None:
    """The server is killed after the agent let go of its sockets and while the image was being
    written: the next start finds a running sandbox and a partial image, and the session runs on."""
    with running_server(data_root / "data") as server:
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            session = agent_bay.create(CreateSessionParams(runtime="gvisor")).session
            assert session is not None
            assert session.file_system.write_file("/home/user/kept.txt", "still here").success
        directory = server.data_dir / "paused" / session.session_id
        server.stop(signal.SIGKILL)
        server.release_agent_sockets(session.session_id)
        (directory / "checkpoint.partial").mkdir(parents=True)
        (directory / "checkpoint.partial" / "checkpoint.img").write_bytes(b"cut off")
        with sqlite3.connect(server.data_dir / "cove.db") as db:
            db.execute("UPDATE sessions SET status = 'PAUSING' WHERE session_id = ?", (session.session_id,))
        server.start()
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            again = agent_bay.get(session.session_id).session
            assert again is not None and again.get_status().status == "RUNNING"
            assert not (directory / "checkpoint.partial").exists(), "the partial image went"
            read = again.file_system.read_file("/home/user/kept.txt")
            assert read.content == "still here", read.error_message
            assert again.beta_pause().success, "and it can be paused again"
            assert again.beta_resume().success
            assert again.file_system.read_file("/home/user/kept.txt").content == "still here"
            again.delete()


@pytest.mark.parametrize("cut_off", ["before the restore", "during the restore"])
def test_a_resume_cut_off_midway_loses_nothing(data_root: Path, cut_off: str) -> None:
    """The server is killed while it resumes a paused session: once its image is renamed for the
    restore, or once runsc restores from it (runsc, the server's child, goes on alone). The next
    start finds the session RUNNING, or PAUSED and resumable, never RESUMING, with what its memory
    held."""
    with running_server(data_root / "data") as server:
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            session = agent_bay.create(CreateSessionParams(runtime="gvisor")).session
            assert session is not None
            held = session.code.run_code(
                "import hashlib, os\nkept = os.urandom(128 << 20)\nhashlib.sha256(kept).hexdigest()"
            )
            assert held.success, held.error_message
            assert session.beta_pause().success
        directory = server.data_dir / "paused" / session.session_id

        def resume_began() -> bool:
            if cut_off == "before the restore":
                return (directory / "checkpoint.restoring").exists()
            return server.runsc("state", session.session_id).returncode == 0

        with ThreadPoolExecutor(1) as resuming, server.client(KEY_A) as http:
            resume = resuming.submit(http.post, f"/v1/sessions/{session.session_id}/resume")
            deadline = time.monotonic() + 60
            while not resume_began():
                assert time.monotonic() < deadline and not resume.done(), "the resume was not caught"
                time.sleep(0.005)
            server.stop(signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                resume.result()
        server.start()
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            again = agent_bay.get(session.session_id).session
            assert again is not None
            status = again.get_status().status
            assert status in ("RUNNING", "PAUSED"), status
            if status == "PAUSED":
                assert agent_bay.beta_resume(again).success
            read = again.code.run_code("hashlib.sha256(kept).hexdigest()")
            assert read.success and read.result == held.result, read.error_message
            assert removed(directory / "checkpoint.restoring")
            assert again.beta_pause().success, "and it pauses and resumes again"
            assert again.beta_resume().success
            assert again.code.run_code("hashlib.sha256(kept).hexdigest()").result == held.result
            again.delete()


def test_a_pause_gvisor_cannot_checkpoint_leaves_the_session_running(gvisor_session: Session) -> None:
    """A Unix socket bound in the session's files is the host's, which gVisor cannot save: the pause
    fails, saying why, and the session runs on as it was."""
    session = gvisor_session
    listener = session.command.start(
        "python3 -c \"import socket, time; s = socket.socket(socket.AF_UNIX); s.bind('/home/user/app.sock'); "
        's.listen(); time.sleep(600)"'
    )
    assert listener.success, listener.error_message
    deadline = time.monotonic() + 60
    while session.command.execute_command("test -S /home/user/app.sock").exit_code != 0:
        assert time.monotonic() < deadline, "the socket was never bound"
        time.sleep(0.2)
    paused = session.beta_pause()
    assert not paused.success and paused.http_status_code == 409, paused
    assert "Unix socket" in paused.error_message, paused.error_message
    assert session.get_status().status == "RUNNING"
    assert session.command.execute_command("echo still here").stdout == "still here\n"
    assert session.command.output(listener.process_id).running
    session.command.kill(listener.process_id)
    assert session.beta_pause().success, "once the socket is closed, the pause works"
    assert session.beta_resume().success


def test_a_fork_goes_on_from_the_same_processes_memory_and_files(
    gvisor_session: Session, server: CoveServer
) -> None:
    source = gvisor_session
    assert source.file_system.write_file("/home/user/before.txt", "shared past").success
    counter = source.command.start(
        'python3 -c "import os, time\nn = 0\nwhile True:\n    n += 1\n'
        "    open('/tmp/n.tmp', 'w').write(str(n)); os.rename('/tmp/n.tmp', '/tmp/n'); time.sleep(0.1)\""
    )
    assert counter.success, counter.error_message
    wait_for_file(source, "/tmp/n")
    forked = source.beta_fork()
    assert forked.success and forked.session is not None, forked.error_message
    fork = forked.session
    try:
        assert fork.session_id != source.session_id and fork.session_id in server.gvisor_containers()
        assert fork.get_status().status == "RUNNING" and source.get_status().status == "RUNNING"
        assert fork.file_system.read_file("/home/user/before.txt").content == "shared past"
        assert fork.command.output(counter.process_id).running, "the fork's agent knows the process"
        at_fork = int(wait_for_file(fork, "/tmp/n"))
        time.sleep(1)
        assert int(wait_for_file(fork, "/tmp/n")) > at_fork, "its copy of the process counts on"
        assert fork.file_system.write_file("/home/user/fork-only.txt", "mine").success
        assert not source.file_system.read_file("/home/user/fork-only.txt").success, "files are apart"
        assert "eth0:" in fork.command.execute_command("cat /proc/net/dev").stdout
        owner = fork.command.execute_command("stat -c %U /home/user/before.txt").stdout.strip()
        assert owner == "user"
        assert fork.command.execute_command("hostname").stdout.strip() == fork.session_id
        assert source.command.execute_command("hostname").stdout.strip() == source.session_id
    finally:
        fork.delete()
    assert source.command.execute_command("echo on").stdout == "on\n", "the source runs on"


def test_a_fork_of_several_from_one_checkpoint(gvisor_session: Session, server: CoveServer) -> None:
    source = gvisor_session
    assert source.code.run_code("held = 'in memory'").success
    forked = source.beta_fork(count=2)
    assert forked.success and len(forked.sessions) == 2, forked.error_message
    try:
        first, second = forked.sessions
        assert len({first.session_id, second.session_id, source.session_id}) == 3
        for fork in forked.sessions:
            assert fork.get_status().status == "RUNNING"
            assert fork.command.execute_command("hostname").stdout.strip() == fork.session_id
            held = fork.code.run_code("held")
            assert held.success and "in memory" in held.result, held.error_message
        assert first.file_system.write_file("/home/user/first.txt", "1").success
        assert not second.file_system.read_file("/home/user/first.txt").success
        with server.client(KEY_A) as http:
            for count in (0, 11):
                refused = http.post(f"/v1/sessions/{source.session_id}/fork", json={"count": count})
                assert refused.status_code == 400, refused.text
    finally:
        for fork in forked.sessions:
            fork.delete()
    cli = cove(
        "session", "fork", source.session_id, "--count", "2", "--endpoint", server.url, "--api-key", KEY_A
    )
    assert cli.exit_code == 0, cli.output
    made = cli.output.split()
    assert len(made) == 2
    with server.client(KEY_A) as http:
        for session_id in made:
            assert http.delete(f"/v1/sessions/{session_id}").status_code == 200


def test_a_tool_call_resumes_a_paused_session_when_the_server_says_so() -> None:
    with (
        scratch_server(auto_resume="true") as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        created = agent_bay.create(CreateSessionParams(runtime="gvisor"))
        assert created.session is not None, created.error_message
        session = created.session
        try:
            assert session.code.run_code("kept = 7").success
            assert session.beta_pause().success
            assert session.get_status().status == "PAUSED"
            ran = session.code.run_code("kept * 6")
            assert ran.success and "42" in ran.result, ran.error_message
            assert session.get_status().status == "RUNNING"
        finally:
            session.delete()
