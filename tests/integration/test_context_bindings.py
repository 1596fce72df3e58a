"""Binding contexts to a running session through the REST API: POST and GET /v1/sessions/{id}/contexts,
and syncing them on demand (POST .../contexts/sync, GET .../contexts/tasks). The official SDK's bind,
list_bindings and file transfers: test_agentbay_sdk.py; Cove's SDK: test_session_context_sdk.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_B, CoveServer


@pytest.fixture
def context(api: httpx.Client) -> Iterator[str]:
    created = api.post("/v1/contexts", json={"name": f"bind-{uuid.uuid4().hex[:8]}"})
    assert created.status_code == 201, created.text
    context_id: str = created.json()["context"]["id"]
    url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "in/seed.txt"}).json()["url"]
    assert httpx.put(url, content=b"seeded").status_code == 200
    yield context_id
    api.delete(f"/v1/contexts/{context_id}")


@BOTH_RUNTIMES
def test_bind_and_list(api: httpx.Client, server: CoveServer, new_session: Any, context: str) -> None:
    session_id = new_session()["session_id"]
    path = f"/v1/sessions/{session_id}/contexts"
    assert api.get(path).json()["bindings"] == []
    bound = api.post(path, json={"context_syncs": [{"context_id": context, "path": "/home/user/b"}]})
    assert bound.status_code == 200, bound.text
    assert [(b["context_id"], b["path"]) for b in bound.json()["bindings"]] == [(context, "/home/user/b")]
    assert bound.json()["bindings"][0]["context_name"].startswith("bind-")
    assert bound.json()["bindings"][0]["policy"]["uploadPolicy"]["autoUpload"] is True
    assert server.sandbox(session_id, "cat /home/user/b/in/seed.txt").stdout == "seeded"
    assert api.get(path).json()["bindings"] == bound.json()["bindings"]

    overlapping = api.post(path, json={"context_syncs": [{"context_id": context, "path": "/home/user"}]})
    assert overlapping.status_code == 400 and "overlaps" in overlapping.json()["error"]["message"]
    unknown = api.post(path, json={"context_syncs": [{"context_id": "ctx-nope", "path": "/home/user/c"}]})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ContextNotFound"
    with server.client(KEY_B) as stranger:
        assert stranger.get(path).status_code == 404

    server.sandbox(session_id, "echo later > /home/user/b/later.txt")
    assert api.delete(f"/v1/sessions/{session_id}").status_code == 200
    url = api.post(f"/v1/contexts/{context}/download_url", params={"path": "later.txt"}).json()["url"]
    assert httpx.get(url).content == b"later\n", "uploaded before release, as the default policy says"


@BOTH_RUNTIMES
def test_a_failed_download_binds_nothing(
    api: httpx.Client, server: CoveServer, new_session: Any, context: str
) -> None:
    session_id = new_session()["session_id"]
    server.sandbox(session_id, "echo file > /home/user/taken")
    path = f"/v1/sessions/{session_id}/contexts"
    failed = api.post(path, json={"context_syncs": [{"context_id": context, "path": "/home/user/taken"}]})
    assert failed.status_code >= 400, failed.text
    assert api.get(path).json()["bindings"] == []
    assert server.sandbox(session_id, "cat /home/user/taken").stdout == "file\n"


@BOTH_RUNTIMES
def test_sync_now_and_its_tasks(
    api: httpx.Client, server: CoveServer, new_session: Any, context: str
) -> None:
    session_id = new_session(context_syncs=[{"context_id": context, "path": "/home/user/s"}])["session_id"]
    server.sandbox(session_id, "echo now > /home/user/s/now.txt")
    synced = api.post(f"/v1/sessions/{session_id}/contexts/sync")  # no body: upload every sync
    assert synced.status_code == 200, synced.text
    [task] = synced.json()["tasks"]
    assert (task["context_id"], task["path"], task["task_type"], task["status"]) == (
        context,
        "/home/user/s",
        "upload",
        "Success",
    )
    assert task["error_message"] == "" and 0 < task["start_time"] <= task["finish_time"]
    url = api.post(f"/v1/contexts/{context}/download_url", params={"path": "now.txt"}).json()["url"]
    assert httpx.get(url).content == b"now\n"

    tasks = f"/v1/sessions/{session_id}/contexts/tasks"
    assert [t["task_type"] for t in api.get(tasks).json()["tasks"]] == ["download", "upload"]
    downloads = api.get(tasks, params={"context_id": context, "task_type": "download"}).json()["tasks"]
    assert [(t["path"], t["status"]) for t in downloads] == [("/home/user/s", "Success")]
    down = api.post(
        f"/v1/sessions/{session_id}/contexts/sync", json={"path": "/home/user/s/", "mode": "download"}
    )
    assert down.status_code == 200 and [t["task_type"] for t in down.json()["tasks"]] == ["download"]

    assert api.get(tasks, params={"task_type": "copy"}).status_code == 400
    assert api.get(tasks, params={"context_id": "ctx-nope"}).json()["error"]["code"] == "ContextNotFound"
    assert api.post(f"/v1/sessions/{session_id}/contexts/sync", json={"mode": "both"}).status_code == 400
    with server.client(KEY_B) as stranger:
        assert stranger.get(tasks).status_code == 404
        assert stranger.post(f"/v1/sessions/{session_id}/contexts/sync").status_code == 404
