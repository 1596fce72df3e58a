"""Context sync and file transfers as AgentBay's own examples use them, through the unmodified
official SDK and through Cove's: folders outside the session user's home, the Archive upload mode,
files listed by their path in the session, watch_directory bursts and upload_file/download_file."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("AGENTBAY_LOG_LEVEL", "CRITICAL")

from agentbay import (
    AgentBay,
    ContextSync,
    CreateSessionParams,
    Lifecycle,
    MappingPolicy,
    RecyclePolicy,
    SyncPolicy,
    UploadMode,
    UploadPolicy,
)

import cove
from tests.integration.server import KEY_A, CoveServer
from tests.integration.test_agentbay_sdk import agent_bay, inside  # noqa: F401 (a fixture)

pytestmark = pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")


@pytest.fixture
def context(agent_bay: AgentBay) -> Iterator[Any]:  # noqa: F811
    made = agent_bay.context.get(f"parity-{uuid.uuid4().hex[:8]}", create=True).context
    yield made
    agent_bay.context.delete(made)


def names(agent_bay: AgentBay, context_id: str, folder: str) -> list[str]:  # noqa: F811
    listed = agent_bay.context.list_files(context_id, folder)
    assert listed.success, listed.error_message
    return sorted(entry.file_name for entry in listed.entries)


def test_folders_outside_the_home_are_made_for_the_user(
    agent_bay: AgentBay,  # noqa: F811
    server: CoveServer,
    context: Any,
) -> None:
    folder = "/home/wuying/data"
    created = agent_bay.create(CreateSessionParams(context_syncs=[ContextSync.new(context.id, folder)]))
    assert created.success, created.error_message
    session = created.session
    try:
        assert inside(server, session, f"stat -c %U {folder} /home/wuying").split() == ["user", "user"]
        assert session.file_system.write_file(f"{folder}/note.txt", "kept").success
        assert session.context.sync().success
        assert names(agent_bay, context.id, folder) == ["note.txt"], "listed by its path in the session"
        assert names(agent_bay, context.id, "/") == ["note.txt"]
    finally:
        deleted = session.delete(sync_context=True)
    assert deleted.success, deleted.error_message
    refused = agent_bay.create(CreateSessionParams(context_syncs=[ContextSync.new(context.id, "/etc/x")]))
    assert not refused.success and "system folder" in refused.error_message


def test_archive_mode_through_the_official_sdk(
    agent_bay: AgentBay,  # noqa: F811
    server: CoveServer,
    context: Any,
) -> None:
    folder = "/tmp/archive-mode-test"
    policy = SyncPolicy(
        upload_policy=UploadPolicy(upload_mode=UploadMode.ARCHIVE),
        recycle_policy=RecyclePolicy(lifecycle=Lifecycle.LIFECYCLE_1DAY, paths=[""]),
    )
    first = agent_bay.create(CreateSessionParams(context_syncs=[ContextSync.new(context.id, folder, policy)]))
    assert first.success, first.error_message
    inside(
        server, first.session, f"mkdir -p {folder}/sub && echo a > {folder}/a.txt && echo b > {folder}/sub/b"
    )
    assert first.session.context.sync().success
    assert any("zip" in name for name in names(agent_bay, context.id, folder))
    assert first.session.delete(sync_context=True).success
    second = agent_bay.create(
        CreateSessionParams(context_syncs=[ContextSync.new(context.id, "/data/x", policy)])
    )
    assert second.success, second.error_message
    try:
        assert inside(server, second.session, "cat /data/x/a.txt /data/x/sub/b") == "a\nb\n"
        assert inside(server, second.session, "ls /data/x").split() == ["a.txt", "sub"]
    finally:
        assert second.session.delete().success


def test_a_mapped_folder_is_found_by_its_other_path(
    agent_bay: AgentBay,  # noqa: F811
    server: CoveServer,
    context: Any,
) -> None:
    """A mappingPolicy names the folder's path on another system (a Windows one here): the files
    follow the sync to its Linux path, and the context lists them by either path."""
    windows = "C:\\Users\\me\\data"
    policy = SyncPolicy(mapping_policy=MappingPolicy(path=windows))
    sync = ContextSync.new(context.id, "/home/wuying/data", policy)
    first = agent_bay.create(CreateSessionParams(context_syncs=[sync]))
    assert first.success, first.error_message
    inside(server, first.session, "mkdir -p /home/wuying/data/sub && echo w > /home/wuying/data/sub/w.txt")
    assert first.session.context.sync().success
    assert names(agent_bay, context.id, windows) == ["sub"]
    assert names(agent_bay, context.id, f"{windows}\\sub") == ["w.txt"]
    assert names(agent_bay, context.id, "/home/wuying/data/sub") == ["w.txt"]
    assert first.session.delete().success
    second = agent_bay.create(
        CreateSessionParams(context_syncs=[ContextSync.new(context.id, "/tmp/elsewhere", policy)])
    )
    assert second.success, second.error_message
    try:
        assert inside(server, second.session, "cat /tmp/elsewhere/sub/w.txt") == "w\n"
    finally:
        assert second.session.delete().success


def test_archive_mode_and_data_folders_through_coves_sdk(server: CoveServer) -> None:
    with cove.AgentBay(api_key=KEY_A, cfg=cove.Config(endpoint=server.url)) as client:
        context = client.context.get(f"parity-{uuid.uuid4().hex[:8]}", create=True).context
        policy = cove.SyncPolicy(upload_policy=cove.UploadPolicy(upload_mode=cove.UploadMode.ARCHIVE))
        try:
            made = client.create(
                cove.CreateSessionParams(context_syncs=[cove.ContextSync.new(context.id, "/data/w", policy)])
            )
            assert made.session is not None, made.error_message
            assert made.session.file_system.write_file("/data/w/x.txt", "x").success
            assert made.session.delete(sync_context=True).success
            listed = client.context.list_files(context.id, "/data/w")
            assert [entry.file_name for entry in listed.entries] == ["sync_archive.zip"]
            again = client.create(
                cove.CreateSessionParams(context_syncs=[cove.ContextSync.new(context.id, "/opt/w", policy)])
            )
            assert again.session is not None, again.error_message
            try:
                assert again.session.file_system.read_file("/opt/w/x.txt").content == "x"
            finally:
                again.session.delete()
        finally:
            client.context.delete(context)


def test_watch_directory_reports_a_burst_once_each_in_order(
    agent_bay: AgentBay,  # noqa: F811
    server: CoveServer,
) -> None:
    session = agent_bay.create().session
    try:
        fs = session.file_system
        assert fs.create_directory("/tmp/burst").success
        seen: list[Any] = []
        stop = threading.Event()
        watcher = fs.watch_directory("/tmp/burst", seen.extend, interval=0.2, stop_event=stop)
        watcher.start()
        try:
            assert watcher.ready_event.wait(60)
            inside(server, session, "cd /tmp/burst && echo a > a && echo b > b && echo more >> a && rm b")
            inside(server, session, "echo done > /tmp/burst/last")
            while ("create", "/tmp/burst/last") not in [(e.event_type, e.path) for e in seen]:
                assert watcher.is_alive()
                stop.wait(0.2)
        finally:
            stop.set()
            watcher.join(30)
        assert [(event.event_type, event.path) for event in seen] == [
            ("create", "/tmp/burst/a"),
            ("create", "/tmp/burst/b"),
            ("modify", "/tmp/burst/a"),
            ("delete", "/tmp/burst/b"),
            ("create", "/tmp/burst/last"),
        ]
    finally:
        session.delete()


def test_upload_and_download_file_outside_the_home(
    agent_bay: AgentBay,  # noqa: F811
    server: CoveServer,
    data_root: Path,
) -> None:
    session = agent_bay.create().session
    try:
        local = data_root / "from-host.txt"
        local.write_text("from the host")
        uploaded = session.file_system.upload_file(
            str(local), "/home/wuying/in/from-host.txt", poll_interval=0.2
        )
        assert uploaded.success, uploaded.error_message
        assert session.file_system.read_file("/home/wuying/in/from-host.txt").content == "from the host"
        assert session.file_system.write_file("/home/wuying/in/from-session.txt", "from the session").success
        back = data_root / "back.txt"
        downloaded = session.file_system.download_file(
            "/home/wuying/in/from-session.txt", str(back), poll_interval=0.2
        )
        assert downloaded.success, downloaded.error_message
        assert back.read_text() == "from the session"
    finally:
        session.delete()
