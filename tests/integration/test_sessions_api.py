"""The native REST API on a real server: lifecycle, paging, labels, bad input, tenants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.server import KEY_A, KEY_B, CoveServer

NewSession = Callable[..., dict[str, Any]]


def test_create_get_info_delete(server: CoveServer, api: httpx.Client, new_session: NewSession) -> None:
    session = new_session(labels={"team": "a"}, resources={"memory_mb": 256, "cpus": 0.5, "pids": 64})
    session_id = session["session_id"]
    assert session["status"] == "RUNNING"
    assert session["image_id"] == "linux_latest"
    assert session["resources"] == {"memory_mb": 256, "cpus": 0.5, "pids": 64, "disk_mb": 10240}
    assert session["resource_url"].endswith(f"/v1/sessions/{session_id}")
    assert session_id in server.containers()

    got = api.get(f"/v1/sessions/{session_id}")
    assert got.status_code == 200 and got.json()["session"]["labels"] == {"team": "a"}
    assert got.headers["X-Request-Id"] == got.json()["request_id"]
    info = api.get(f"/v1/sessions/{session_id}/info").json()["info"]
    assert info["hostname"] == session_id and info["status"] == "RUNNING"

    deleted = api.delete(f"/v1/sessions/{session_id}")
    assert deleted.status_code == 200 and deleted.json()["session"]["status"] == "DELETED"
    assert session_id not in server.containers()
    assert not (server.data_dir / "sessions" / session_id).exists()
    assert not [p for p in server.cgroup_dirs() if p.name == session_id]
    again = api.delete(f"/v1/sessions/{session_id}")
    assert again.status_code == 200 and again.json()["session"]["status"] == "DELETED"
    assert api.get(f"/v1/sessions/{session_id}").json()["session"]["status_reason"] == "deleted by its owner"


def test_labels_replace_and_filter_with_pages(api: httpx.Client, new_session: NewSession) -> None:
    run = uuid.uuid4().hex
    ids = [new_session(labels={"run": run, "n": str(i)})["session_id"] for i in range(5)]

    def page(number: int) -> dict[str, Any]:
        answer = api.get(
            "/v1/sessions", params={"labels": json.dumps({"run": run}), "page": number, "limit": 2}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    first, second, third = page(1), page(2), page(3)
    assert first["total_count"] == 5 and first["next_page"] == 2 and third["next_page"] is None
    listed = [s["session_id"] for p in (first, second, third) for s in p["sessions"]]
    assert listed == ids

    one = api.get("/v1/sessions", params={"labels": json.dumps({"run": run, "n": "2"})}).json()
    assert [s["session_id"] for s in one["sessions"]] == [ids[2]]

    put = api.put(f"/v1/sessions/{ids[1]}/labels", json={"labels": {"run": run, "owner": "me"}})
    assert put.status_code == 200 and put.json()["labels"] == {"run": run, "owner": "me"}
    assert api.get(f"/v1/sessions/{ids[1]}/labels").json()["labels"] == {"run": run, "owner": "me"}


def test_status_filter(api: httpx.Client, new_session: NewSession) -> None:
    session_id = new_session(labels={"case": "status-filter"})["session_id"]
    api.delete(f"/v1/sessions/{session_id}")
    labels = json.dumps({"case": "status-filter"})
    live = api.get("/v1/sessions", params={"labels": labels}).json()
    assert live["total_count"] == 0
    deleted = api.get("/v1/sessions", params={"labels": labels, "status": "DELETED"}).json()
    assert [s["session_id"] for s in deleted["sessions"]] == [session_id]
    bad = api.get("/v1/sessions", params={"status": "SLEEPING"})
    assert bad.status_code == 400 and "RUNNING" in bad.json()["error"]["message"]


def test_unknown_session_is_404_naming_it(api: httpx.Client) -> None:
    for method, path in (
        ("GET", "/v1/sessions/session-nope"),
        ("GET", "/v1/sessions/session-nope/info"),
        ("GET", "/v1/sessions/session-nope/labels"),
        ("DELETE", "/v1/sessions/session-nope"),
    ):
        answer = api.request(method, path)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "SessionNotFound"
        assert "session-nope" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"labels": {"": "x"}}, ["labels", "key is empty"]),
        ({"labels": {"k": " "}}, ["labels", "'k'", "empty"]),
        ({"labels": {f"k{i}": "v" for i in range(21)}}, ["labels", "at most 20"]),
        ({"labels": {"k" * 129: "v"}}, ["labels", "128"]),
        ({"labels": {"k": "v" * 257}}, ["labels", "256"]),
        ({"labels": {"k": 1}}, ["labels"]),
        ({"resources": {"memory_mb": 10**6}}, ["resources.memory_mb", "maximum is 8192"]),
        ({"resources": {"cpus": 1000}}, ["resources.cpus", "maximum"]),
        ({"resources": {"pids": 10**6}}, ["resources.pids", "maximum is 4096"]),
        ({"resources": {"memory_mb": 1}}, ["resources.memory_mb", "minimum"]),
        ({"image_id": "no_such_image"}, ["no_such_image", "cove image import no_such_image PATH"]),
        ({"image_id": "../etc"}, ["image_id", "not a valid image id"]),
    ],
)
def test_bad_create_input_is_400_naming_the_field(
    api: httpx.Client, body: dict[str, Any], words: list[str]
) -> None:
    answer = api.post("/v1/sessions", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidArgument"
    for word in words:
        assert word in error["message"]


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"limit": 0}, {"limit": 101}, {"labels": "[1]"}, {"labels": "{"}]
)
def test_bad_list_input_is_400(api: httpx.Client, params: dict[str, Any]) -> None:
    answer = api.get("/v1/sessions", params=params)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "InvalidArgument"


def test_bad_labels_on_update_are_400(api: httpx.Client, new_session: NewSession) -> None:
    session_id = new_session()["session_id"]
    answer = api.put(f"/v1/sessions/{session_id}/labels", json={"labels": {"": "v"}})
    assert answer.status_code == 400 and "labels" in answer.json()["error"]["message"]


def test_keys_are_required_and_checked(server: CoveServer) -> None:
    assert httpx.get(f"{server.url}/v1/sessions").status_code == 401
    with server.client("not-a-key") as stranger:
        answer = stranger.get("/v1/sessions")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "Unauthorized"
    assert httpx.get(f"{server.url}/v1/health").status_code == 200


def test_tenants_cannot_see_each_other(server: CoveServer, new_session: NewSession) -> None:
    session_id = new_session(key=KEY_A, labels={"case": "tenants"})["session_id"]
    with server.client(KEY_B) as other:
        for method, path in (
            ("GET", f"/v1/sessions/{session_id}"),
            ("GET", f"/v1/sessions/{session_id}/labels"),
            ("PUT", f"/v1/sessions/{session_id}/labels"),
            ("DELETE", f"/v1/sessions/{session_id}"),
        ):
            body = {"labels": {"x": "y"}} if method == "PUT" else None
            assert other.request(method, path, json=body).status_code == 404
        listed = other.get("/v1/sessions", params={"labels": json.dumps({"case": "tenants"})}).json()
        assert listed["total_count"] == 0
    assert session_id in server.containers()


def test_openapi_document_describes_the_api(server: CoveServer) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/sessions", "/v1/sessions/{session_id}", "/v1/sessions/{session_id}/labels"} <= set(
        document["paths"]
    )
