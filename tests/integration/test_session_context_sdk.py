"""Cove's SDK `session.context` (sync, info, bind, list_bindings), sync and async, against a real server
and real sandboxes, through the native REST calls under /v1/sessions/{id}/contexts. The official SDK's
session.context: test_agentbay_sdk.py; the REST bind calls alone: test_context_bindings.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from cove import (
    AgentBay,
    AsyncAgentBay,
    AsyncSession,
    BWList,
    Config,
    Context,
    ContextSync,
    CreateSessionParams,
    Session,
    SyncPolicy,
    UploadPolicy,
    WhiteList,
)
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, KEY_B, CoveServer

SYNCED = "/home/user/work"
BOUND = "/home/user/bound"
UNKNOWN = "ctx-nosuchcontext00"


@pytest.fixture
def agent_bay(server: CoveServer) -> Iterator[AgentBay]:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as client:
        yield client


@pytest.fixture
def contexts(agent_bay: AgentBay) -> Iterator[list[Context]]:
    """Two fresh contexts of KEY_A, each holding seed.txt; deleted after the test."""
    made = []
    for _ in range(2):
        context = agent_bay.context.create(f"sdk-sync-{uuid.uuid4().hex[:8]}").context
        assert context is not None
        url = agent_bay.context.get_file_upload_url(context.id, "seed.txt").url
        assert httpx.put(url, content=b"seeded").status_code == 200
        made.append(context)
    yield made
    for context in made:
        agent_bay.context.delete(context)


@pytest.fixture
def session(agent_bay: AgentBay, contexts: list[Context], runtime: str | None) -> Iterator[Session]:
    """A session on `runtime` syncing the first context at SYNCED; deleted after the test."""
    syncs = [ContextSync.new(contexts[0].id, SYNCED)]
    created = agent_bay.create(CreateSessionParams(context_syncs=syncs, runtime=runtime))
    assert created.session is not None, created.error_message
    yield created.session
    created.session.delete()


def context_files(agent_bay: AgentBay, context_id: str) -> list[str]:
    return sorted(entry.file_name for entry in agent_bay.context.list_files(context_id, "/").entries)


@BOTH_RUNTIMES
def test_sync_uploads_and_info_reports_each_task(
    agent_bay: AgentBay, session: Session, contexts: list[Context]
) -> None:
    context_id = contexts[0].id
    assert session.file_system.write_file(f"{SYNCED}/made.txt", "made in the session").success
    before = int(time.time())
    synced = session.context.sync()
    assert synced.success and synced.request_id, synced.error_message
    assert context_files(agent_bay, context_id) == ["made.txt", "seed.txt"]

    tasks = session.context.info().context_status_data
    assert sorted((t.context_id, t.path, t.task_type, t.status) for t in tasks) == [
        (context_id, SYNCED, "download", "Success"),
        (context_id, SYNCED, "upload", "Success"),
    ]
    upload = session.context.info(context_id=context_id, path=SYNCED, task_type="upload")
    assert upload.success and upload.request_id and len(upload.context_status_data) == 1
    task = upload.context_status_data[0]
    assert task.error_message == "" and before <= task.start_time <= task.finish_time <= time.time()

    # mode download: the context's files back into the session's folder
    assert session.file_system.delete_file(f"{SYNCED}/seed.txt").success
    assert session.context.sync(context_id=context_id, path=SYNCED, mode="download").success
    assert session.file_system.read_file(f"{SYNCED}/seed.txt").content == "seeded"


@BOTH_RUNTIMES
def test_a_failed_sync_reports_failed_with_the_error(agent_bay: AgentBay, session: Session) -> None:
    assert session.command.execute_command(f"rm -rf {SYNCED} && echo not-a-folder > {SYNCED}").success
    failed = session.context.sync()
    assert not failed.success and "not a folder" in failed.error_message, failed.error_message
    upload = session.context.info(task_type="upload").context_status_data
    assert [(t.status, "not a folder" in t.error_message) for t in upload] == [("Failed", True)]
    assert upload[0].finish_time >= upload[0].start_time > 0
    assert session.get_status().status == "RUNNING", "a failed sync leaves the session as it was"


@BOTH_RUNTIMES
def test_delete_with_sync_context_uploads_first_and_keeps_the_session_if_it_cannot(
    agent_bay: AgentBay, contexts: list[Context], runtime: str
) -> None:
    no_upload = SyncPolicy(upload_policy=UploadPolicy(auto_upload=False))
    syncs = [ContextSync.new(contexts[0].id, SYNCED, no_upload)]
    params = CreateSessionParams(context_syncs=syncs, runtime=runtime)
    kept = agent_bay.create(params).session
    assert kept is not None
    assert kept.command.execute_command(f"rm -rf {SYNCED} && echo not-a-folder > {SYNCED}").success
    refused = kept.delete(sync_context=True)
    assert not refused.success and "was kept" in refused.error_message, refused.error_message
    assert kept.get_status().status == "RUNNING"
    assert kept.command.execute_command(f"rm {SYNCED} && mkdir {SYNCED}").success
    assert kept.file_system.write_file(f"{SYNCED}/last.txt", "written just before delete").success
    assert kept.delete(sync_context=True).success
    assert kept.get_status().status == "DELETED"
    assert "last.txt" in context_files(agent_bay, contexts[0].id), "uploaded although its policy does not"


@BOTH_RUNTIMES
def test_bind_and_list_bindings(agent_bay: AgentBay, session: Session, contexts: list[Context]) -> None:
    policy = SyncPolicy(
        upload_policy=UploadPolicy(auto_upload=False),
        bw_list=BWList([WhiteList(path="/seed.txt")]),
    )
    bound = session.context.bind(ContextSync.new(contexts[1].id, BOUND, policy))
    assert bound.success and bound.request_id, bound.error_message
    assert session.file_system.read_file(f"{BOUND}/seed.txt").content == "seeded"

    listed = session.context.list_bindings()
    assert listed.success, listed.error_message
    assert [(b.context_id, b.context_name, b.path) for b in listed.bindings] == [
        (contexts[0].id, contexts[0].name, SYNCED),
        (contexts[1].id, contexts[1].name, BOUND),
    ]
    assert all(b.bind_time for b in listed.bindings)
    reported = json.loads(listed.bindings[1].policy)
    assert reported["uploadPolicy"]["autoUpload"] is False
    assert reported["bwList"]["whiteLists"][0]["path"] == "seed.txt"
    assert reported["recyclePolicy"] == {"lifecycle": "Lifecycle_Forever", "paths": [""]}
    assert reported["downloadPolicy"] == {"autoDownload": True, "downloadStrategy": "DownloadAsync"}
    downloads = session.context.info(context_id=contexts[1].id, task_type="download").context_status_data
    assert [(t.path, t.status) for t in downloads] == [(BOUND, "Success")]

    overlapping = session.context.bind(ContextSync.new(contexts[1].id, f"{SYNCED}/inner"))
    assert not overlapping.success and "overlaps" in overlapping.error_message
    empty = session.context.bind()
    assert not empty.success and empty.error_message == "No contexts provided"
    assert len(session.context.list_bindings().bindings) == 2, "refused binds left nothing behind"


def test_bad_context_ids_and_arguments_fail_clearly(agent_bay: AgentBay, session: Session) -> None:
    for result in (
        session.context.sync(context_id=UNKNOWN),
        session.context.info(context_id=UNKNOWN),
        session.context.bind(ContextSync.new(UNKNOWN, BOUND)),
    ):
        assert not result.success and result.code == "ContextNotFound" and result.http_status_code == 404
        assert UNKNOWN in result.error_message
    not_synced = agent_bay.context.create(f"sdk-unsynced-{uuid.uuid4().hex[:8]}").context
    assert not_synced is not None
    try:
        for result in (
            session.context.sync(context_id=not_synced.id),
            session.context.info(context_id=not_synced.id),
        ):
            assert not result.success and result.code == "InvalidArgument"
            assert "syncs no context" in result.error_message
    finally:
        agent_bay.context.delete(not_synced)
    sideways = session.context.sync(mode="sideways")
    assert not sideways.success and "mode must be 'upload' or 'download'" in sideways.error_message
    bogus = session.context.info(task_type="bogus")
    assert not bogus.success and "task_type must be 'upload' or 'download'" in bogus.error_message
    elsewhere = session.context.sync(path="/home/user/elsewhere")
    assert not elsewhere.success and "syncs no context" in elsewhere.error_message

    with AgentBay(api_key=KEY_B, cfg=Config(endpoint=agent_bay.endpoint)) as stranger:
        other = Session(stranger, session.data)
        for result in (other.context.sync(), other.context.info(), other.context.list_bindings()):
            assert not result.success and result.code == "SessionNotFound"


@pytest.fixture
async def async_agent_bay(server: CoveServer) -> AsyncIterator[AsyncAgentBay]:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as client:
        yield client


@BOTH_RUNTIMES
async def test_async_sync_info_bind_and_list_bindings(
    async_agent_bay: AsyncAgentBay, agent_bay: AgentBay, contexts: list[Context], runtime: str
) -> None:
    params = CreateSessionParams(context_syncs=[ContextSync.new(contexts[0].id, SYNCED)], runtime=runtime)
    created = await async_agent_bay.create(params)
    session: AsyncSession | None = created.session
    assert session is not None, created.error_message
    try:
        assert (await session.file_system.write_file(f"{SYNCED}/async.txt", "async")).success
        assert (await session.context.sync(context_id=contexts[0].id)).success
        assert context_files(agent_bay, contexts[0].id) == ["async.txt", "seed.txt"]
        info = await session.context.info(task_type="upload")
        assert [(t.context_id, t.status) for t in info.context_status_data] == [(contexts[0].id, "Success")]

        assert (await session.context.bind(ContextSync.new(contexts[1].id, BOUND))).success
        bindings = (await session.context.list_bindings()).bindings
        assert [(b.context_id, b.path) for b in bindings] == [
            (contexts[0].id, SYNCED),
            (contexts[1].id, BOUND),
        ]
        missing = await session.context.sync(context_id=UNKNOWN)
        assert not missing.success and missing.code == "ContextNotFound"
    finally:
        await session.delete()
