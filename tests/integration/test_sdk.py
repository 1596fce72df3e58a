"""The SDK, sync and async, against a real server: every call, its results and its failures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from cove import AgentBay, AsyncAgentBay, Config, CreateSessionParams, Session, SessionInfo
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, KEY_B, CoveServer, free_port


@pytest.fixture
def agent_bay(server: CoveServer) -> Iterator[AgentBay]:
    """A client whose sessions are deleted after the test, pass or fail."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as client:
        yield client
        for session_id in client.list(limit=100).session_ids:
            client.delete(session_id)


@pytest.fixture
async def async_agent_bay(server: CoveServer) -> AsyncIterator[AsyncAgentBay]:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as client:
        yield client
        for session_id in (await client.list(limit=100)).session_ids:
            await client.delete(session_id)


def create(agent_bay: AgentBay, **params: object) -> Session:
    result = agent_bay.create(CreateSessionParams(**params))  # type: ignore[arg-type]
    assert result.success, result.error_message
    assert result.session is not None and result.request_id
    return result.session


@BOTH_RUNTIMES
def test_session_lifecycle(agent_bay: AgentBay, server: CoveServer, runtime: str) -> None:
    session = create(agent_bay, runtime=runtime, labels={"team": "a"}, memory_mb=256, cpus=0.5, pids=64)
    assert session.session_id.startswith("session-")
    assert session.data.resources == {"memory_mb": 256, "cpus": 0.5, "pids": 64, "disk_mb": 10240}
    assert server.sandbox(session.session_id, "hostname").stdout.strip() == session.session_id

    assert session.get_status().status == "RUNNING"
    info = session.info()
    assert info.success and isinstance(info.data, SessionInfo)
    assert (info.data.session_id, info.data.hostname, info.data.image_id) == (
        session.session_id,
        session.session_id,
        "linux_latest",
    )
    assert session.get_labels().data == {"team": "a"}
    assert session.set_labels({"team": "b", "tier": "gold"}).success
    assert session.get_labels().data == {"team": "b", "tier": "gold"}

    got = agent_bay.get(session.session_id)
    assert got.success and got.session is not None
    assert got.session.data.labels == {"team": "b", "tier": "gold"}

    deleted = agent_bay.delete(session)
    assert deleted.success and deleted.request_id
    assert session.get_status().status == "DELETED"
    assert session.delete().success, "deleting twice is fine"


def test_list_filters_by_labels_and_pages(agent_bay: AgentBay) -> None:
    run = uuid.uuid4().hex[:8]
    ids = {create(agent_bay, labels={"run": run, "n": str(i)}).session_id for i in range(3)}
    create(agent_bay, labels={"run": "other"})

    first = agent_bay.list(labels={"run": run}, limit=2)
    assert first.success and first.total_count == 3 and first.max_results == 2
    assert len(first.session_ids) == 2 and first.next_token == "2"
    second = agent_bay.list(labels={"run": run}, limit=2, page=int(first.next_token))
    assert second.next_token == ""
    assert set(first.session_ids) | set(second.session_ids) == ids
    assert agent_bay.list(labels={"run": run, "n": "1"}).sessions[0].labels == {"run": run, "n": "1"}
    assert agent_bay.list(labels={"run": run}, status="DELETED").total_count == 0


def test_failures_are_results_that_say_why(agent_bay: AgentBay, server: CoveServer) -> None:
    missing = agent_bay.get("session-nope")
    assert (missing.success, missing.code, missing.http_status_code) == (False, "SessionNotFound", 404)
    assert "session-nope" in missing.error_message and missing.request_id

    bad = agent_bay.create(CreateSessionParams(labels={"": "x"}))
    assert (bad.success, bad.code, bad.http_status_code) == (False, "InvalidArgument", 400)
    assert "label" in bad.error_message
    too_big = agent_bay.create(CreateSessionParams(memory_mb=10**7))
    assert too_big.code == "InvalidArgument" and "maximum" in too_big.error_message

    assert agent_bay.get("").error_message == "session_id is required"
    assert agent_bay.list(status="SLEEPING").code == "InvalidArgument"

    mine = create(agent_bay)
    with AgentBay(api_key=KEY_B, cfg=Config(endpoint=server.url)) as other_tenant:
        assert other_tenant.get(mine.session_id).http_status_code == 404
        assert not other_tenant.delete(mine.session_id).success
    with AgentBay(api_key="not-a-key", cfg=Config(endpoint=server.url)) as stranger:
        assert (stranger.list().http_status_code, stranger.list().code) == (401, "Unauthorized")


def test_an_unreachable_server_is_a_failed_result() -> None:
    with AgentBay(api_key="k", cfg=Config(endpoint=f"http://127.0.0.1:{free_port()}", timeout_ms=2000)) as c:
        result = c.list()
    assert (result.success, result.code) == (False, "ConnectionError")
    assert "GET /v1/sessions" in result.error_message


def test_environment_variables_configure_the_client(
    server: CoveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVE_API_KEY", raising=False)
    monkeypatch.delenv("COVE_ENDPOINT", raising=False)
    monkeypatch.setenv("AGENTBAY_API_KEY", KEY_A)
    monkeypatch.setenv("AGENTBAY_ENDPOINT", server.url)
    with AgentBay() as client:
        assert client.list().success


@BOTH_RUNTIMES
async def test_async_client_does_the_same(
    async_agent_bay: AsyncAgentBay, server: CoveServer, runtime: str
) -> None:
    result = await async_agent_bay.create(CreateSessionParams(runtime=runtime, labels={"mode": "async"}))
    assert result.success and result.session is not None
    session = result.session
    assert server.sandbox(session.session_id, "id -u").stdout.strip() == "1000"
    assert (await session.get_status()).status == "RUNNING"
    info = await session.info()
    assert isinstance(info.data, SessionInfo) and info.data.session_id == session.session_id
    assert (await session.set_labels({"mode": "still-async"})).data == {"mode": "still-async"}
    assert (await session.get_labels()).data == {"mode": "still-async"}
    listed = await async_agent_bay.list(labels={"mode": "still-async"})
    assert listed.session_ids == [session.session_id]
    fetched = await async_agent_bay.get(session.session_id)
    assert fetched.session is not None and fetched.session.session_id == session.session_id
    assert (await session.delete()).success
    assert (await session.get_status()).status == "DELETED"
    assert (await async_agent_bay.get("session-nope")).code == "SessionNotFound"
