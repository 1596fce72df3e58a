"""Snapshots of gvisor sessions on real runsc sandboxes: sessions started from them, list, delete, quota."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

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
def agent_bay(server: CoveServer) -> Iterator[AgentBay]:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as made:
        yield made


def cove(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def gvisor(agent_bay: AgentBay) -> Session:
    created = agent_bay.create(CreateSessionParams(runtime="gvisor"))
    assert created.session is not None, created.error_message
    return created.session


def test_sessions_from_one_snapshot_keep_its_memory_and_go_apart(
    agent_bay: AgentBay, server: CoveServer
) -> None:
    source = gvisor(agent_bay)
    made: list[Session] = []
    try:
        assert source.code.run_code("held = 'from the source'").success
        assert source.file_system.write_file("/home/user/before.txt", "shared").success
        taken = source.snapshot("warm")
        assert taken.success and taken.snapshot is not None, taken.error_message
        snapshot = taken.snapshot
        assert snapshot.name == "warm" and snapshot.source_session_id == source.session_id
        assert snapshot.size_bytes > 0 and snapshot.created_at
        assert source.get_status().status == "RUNNING", "the source runs on"
        assert source.command.execute_command("echo on").stdout == "on\n"
        listed = agent_bay.list_snapshots()
        assert listed.success and snapshot.snapshot_id in [s.snapshot_id for s in listed.snapshots]
        for _ in range(2):
            created = agent_bay.create(CreateSessionParams(from_snapshot=snapshot.snapshot_id))
            assert created.session is not None, created.error_message
            made.append(created.session)
        first, second = made
        for session in made:
            assert session.get_status().status == "RUNNING"
            held = session.code.run_code("held")
            assert held.success and "from the source" in held.result, held.error_message
            assert session.file_system.read_file("/home/user/before.txt").content == "shared"
            assert session.command.execute_command("hostname").stdout.strip() == session.session_id
        assert first.file_system.write_file("/home/user/first.txt", "mine").success
        assert not second.file_system.read_file("/home/user/first.txt").success, "their files are apart"
        assert not source.file_system.read_file("/home/user/first.txt").success
        deleted = agent_bay.delete_snapshot(snapshot.snapshot_id)
        assert deleted.success, deleted.error_message
        assert snapshot.snapshot_id not in [s.snapshot_id for s in agent_bay.list_snapshots().snapshots]
        tenant_folders = list((server.data_dir / "snapshots").iterdir())
        assert not any((folder / snapshot.snapshot_id).exists() for folder in tenant_folders)
        gone = agent_bay.create(CreateSessionParams(from_snapshot=snapshot.snapshot_id))
        assert not gone.success and "not found" in gone.error_message
        assert not agent_bay.delete_snapshot(snapshot.snapshot_id).success
    finally:
        for session in [*made, source]:
            session.delete()


def test_snapshots_are_refused_for_runc_paused_and_deleted_sessions(
    agent_bay: AgentBay, server: CoveServer
) -> None:
    runc = agent_bay.create(CreateSessionParams(runtime="runc")).session
    assert runc is not None
    paused = gvisor(agent_bay)
    running = gvisor(agent_bay)
    try:
        with server.client(KEY_A) as http:
            refused = http.post(f"/v1/sessions/{runc.session_id}/snapshots", json={"name": "x"})
            assert refused.status_code == 400 and "gvisor" in refused.json()["error"]["message"], refused.text
            assert paused.beta_pause().success
            refused = http.post(f"/v1/sessions/{paused.session_id}/snapshots", json={"name": "x"})
            assert refused.status_code == 409 and "PAUSED" in refused.json()["error"]["message"], refused.text
            paused.delete()
            refused = http.post(f"/v1/sessions/{paused.session_id}/snapshots", json={"name": "x"})
            assert refused.status_code in (404, 409), refused.text
            if refused.status_code == 409:
                assert "DELETED" in refused.json()["error"]["message"]
            missing = http.post("/v1/sessions", json={"from_snapshot": "snapshot-nonesuch"})
            assert missing.status_code == 404, missing.text
            taken = http.post(f"/v1/sessions/{running.session_id}/snapshots", json={"name": "x"})
            assert taken.status_code == 201, taken.text
            snapshot_id = taken.json()["snapshot"]["snapshot_id"]
            mixed = http.post("/v1/sessions", json={"from_snapshot": snapshot_id, "resources": {"cpus": 2}})
            assert mixed.status_code == 400 and "resources" in mixed.json()["error"]["message"], mixed.text
            assert http.delete(f"/v1/snapshots/{snapshot_id}").status_code == 200
    finally:
        runc.delete()
        paused.delete()
        running.delete()


def test_a_snapshot_past_the_quota_is_refused_and_the_cli_manages_snapshots() -> None:
    with (
        scratch_server(snapshot_quota_mb=1) as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        source = gvisor(agent_bay)
        try:
            # an idle session's image can be under 1 MiB: this one holds more than the quota
            assert source.code.run_code("held = bytearray(4 << 20)").success
            client = ["--endpoint", server.url, "--api-key", KEY_A]
            over = cove("session", "snapshot", *client, source.session_id, "too big")
            assert over.exit_code != 0 and "quota" in over.output, over.output
            with server.client(KEY_A) as http:
                refused = http.post(f"/v1/sessions/{source.session_id}/snapshots", json={"name": "x"})
                assert refused.status_code == 429, refused.text
                assert refused.json()["error"]["code"] == "QuotaExceeded"
            listed = cove("snapshot", "ls", *client)
            assert listed.exit_code == 0 and "snapshot-" not in listed.output, listed.output
            assert source.command.execute_command("echo on").stdout == "on\n", "the source runs on"
        finally:
            source.delete()


def test_the_cli_snapshots_lists_starts_from_and_removes(server: CoveServer) -> None:
    client = ["--endpoint", server.url, "--api-key", KEY_A]
    made = cove("session", "create", *client, "--runtime", "gvisor")
    assert made.exit_code == 0, made.output
    source = made.output.strip()
    try:
        taken = cove("session", "snapshot", *client, source, "from-cli")
        assert taken.exit_code == 0, taken.output
        snapshot_id = taken.output.strip()
        listed = cove("snapshot", "ls", *client)
        assert snapshot_id in listed.output and "from-cli" in listed.output, listed.output
        # A restore that fails leaves the snapshot as it was, and says so.
        (folder,) = (server.data_dir / "snapshots").glob(f"*/{snapshot_id}")
        (folder / "image").rename(folder / "image.aside")
        failed = cove("session", "create", *client, "--from-snapshot", snapshot_id)
        assert failed.exit_code != 0 and "kept as it was" in failed.output, failed.output
        (folder / "image.aside").rename(folder / "image")
        assert snapshot_id in cove("snapshot", "ls", *client).output
        started = cove("session", "create", *client, "--from-snapshot", snapshot_id)
        assert started.exit_code == 0, started.output
        assert cove("session", "rm", *client, started.output.strip()).exit_code == 0
        removed = cove("snapshot", "rm", *client, snapshot_id)
        assert removed.exit_code == 0, removed.output
        assert snapshot_id not in cove("snapshot", "ls", *client).output
    finally:
        cove("session", "rm", *client, source)


def test_a_snapshot_cut_off_midway_leaves_the_source_running_and_no_snapshot(data_root: Path) -> None:
    """The server is killed while the source is frozen and its image half written: the next start
    thaws the source, whose agent listens again, and removes the unfinished folder."""
    with running_server(data_root / "data") as server:
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            session = gvisor(agent_bay)
            assert session.file_system.write_file("/home/user/kept.txt", "still here").success
        server.stop(signal.SIGKILL)
        server.release_agent_sockets(session.session_id)
        assert server.runsc("pause", session.session_id).returncode == 0
        stray = server.data_dir / "snapshots" / "some-tenant" / "snapshot-unfinished"
        (stray / "image").mkdir(parents=True)
        server.start()
        assert not stray.exists(), "the unfinished snapshot went"
        with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
            again = agent_bay.get(session.session_id).session
            assert again is not None and again.get_status().status == "RUNNING"
            read = again.file_system.read_file("/home/user/kept.txt")
            assert read.content == "still here", read.error_message
            assert again.command.execute_command("echo on").stdout == "on\n"
            again.delete()
